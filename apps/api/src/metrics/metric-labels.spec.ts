import type { JobRecord } from '#cluster';
import { jobSample, methodLabel, metricName, routeLabel } from './metric-labels.js';
import { encodeJobData } from '#contracts/testing/encode-job.js';

describe('metric names and labels', () => {
  it('prefixes names and rejects invalid ones', () => {
    expect(metricName('jobs_completed_total')).toBe('encoder_jobs_completed_total');
    expect(() => metricName('bad-name')).toThrow(/invalid metric name/);
  });

  it('bounds the method label', () => {
    expect(methodLabel('get')).toBe('GET');
    expect(methodLabel('PROPFIND')).toBe('OTHER');
    expect(methodLabel(undefined)).toBe('OTHER');
  });

  it('labels requests by route pattern, never by raw URL', () => {
    expect(
      routeLabel({ originalUrl: '/v1/jobs/abc?x=1', baseUrl: '', route: { path: '/v1/jobs/:id' } }),
    ).toBe('/v1/jobs/:id');
    expect(routeLabel({ originalUrl: '/nope/123' })).toBe('unmatched');
    expect(routeLabel({ originalUrl: '/v1/jobs/abc', route: { path: undefined } })).toBe('unmatched');
  });

  it('collapses the mounted operator pages, whatever Express did to url/baseUrl', () => {
    const stale = { baseUrl: '/admin/queues', route: { path: '/api/queues/:queueName' } };
    expect(routeLabel({ ...stale, originalUrl: '/admin/queues/api/queues/encode.cpu?x=1' })).toBe(
      '/admin/queues',
    );
    expect(routeLabel({ originalUrl: '/ADMIN/Queues' })).toBe('/admin/queues');
    expect(routeLabel({ originalUrl: '/docs/swagger-ui.css' })).toBe('/docs');
    expect(routeLabel({ originalUrl: '/docs-json' })).toBe('/docs-json');
    expect(routeLabel({ originalUrl: '/admin/queuesx', route: { path: '/admin/queuesx' } })).toBe(
      '/admin/queuesx',
    );
  });
});

describe('jobSample', () => {
  const base: JobRecord = {
    data: encodeJobData({ jobId: 'j', codec: 'jpeg', frames: 3, createdAt: 1000 }),
    status: 'completed',
    progress: 1,
    node: 'n',
    attempts: 1,
    createdAt: 1000,
    startedAt: 1500,
    finishedAt: 4000,
    error: null,
    outputs: [
      { index: 0, contentType: 'image/jpeg', bytes: 10 },
      { index: 1, contentType: 'image/jpeg', bytes: 20 },
      { index: 2, contentType: 'image/jpeg', bytes: 30 },
    ],
    timings: { queueWaitMs: 500, fetchMs: 5, encodeMs: 1200, storeOutputMs: 10 },
  } as JobRecord;

  it('turns a completed record into seconds, counts and sizes', () => {
    expect(jobSample(base)).toEqual({
      labels: { codec: 'jpeg', pool: 'cpu' },
      status: 'completed',
      processingSeconds: 2.5,
      encodeSeconds: 1.2,
      queueWaitSeconds: 0.5,
      latencySeconds: 3,
      frames: 3,
      inputBytes: 48,
      outputs: 3,
      outputBytes: 60,
    });
  });

  it('leaves out what a record does not know', () => {
    const cancelled = { ...base, status: 'failed', startedAt: null, timings: null, outputs: [] } as JobRecord;
    expect(jobSample(cancelled)).toMatchObject({
      status: 'failed',
      processingSeconds: null,
      encodeSeconds: null,
      queueWaitSeconds: null,
      latencySeconds: 3,
    });
    expect(jobSample({ ...base, finishedAt: 500 } as JobRecord)?.latencySeconds).toBeNull();
  });

  it('ignores jobs that have not finished', () => {
    expect(jobSample({ ...base, status: 'active' } as JobRecord)).toBeNull();
  });
});
