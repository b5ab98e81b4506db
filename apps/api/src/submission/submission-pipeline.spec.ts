import { BadRequestException, PayloadTooLargeException, UnprocessableEntityException } from '@nestjs/common';
import { Readable } from 'node:stream';
import { Test } from '@nestjs/testing';
import type { Request } from 'express';
import { type EncodeJobData } from '#contracts';
import { encodeJobData } from '#contracts/testing/encode-job.js';
import { loadApiConfig } from '../config/api-config.js';
import { submissionFakes, liveNode } from '../testing/fakes.js';
import { TooManyJobsException } from './admission.js';
import { SubmissionPipeline } from './submission-pipeline.js';

function storedJob(jobId: string, extra: Partial<EncodeJobData> = {}): EncodeJobData {
  return encodeJobData({ jobId, width: 4, height: 2, frames: 2, createdAt: 1, ...extra });
}

async function setUp(nodes = [liveNode('cpu-1', 'cpu', ['png', 'h264'])], env: Record<string, string> = {}) {
  const { fakes, providers } = submissionFakes(nodes, env);
  const module = await Test.createTestingModule({ providers }).compile();
  return { service: module.get(SubmissionPipeline), fakes };
}

describe('SubmissionPipeline routing', () => {
  it('answers 422 for gpu work when only cpu nodes are alive', async () => {
    const { service } = await setUp();
    await expect(service.routeOrThrow(['h264'], 'gpu')).rejects.toThrow(
      new UnprocessableEntityException('no live gpu node can encode h264; the cluster offers: h264, png'),
    );
  });

  it('takes the first codec of accept that a node encodes, skipping names it does not know', async () => {
    const { service } = await setUp();
    const candidates = service.candidates({ accept: 'avif2,av1,h264,png' });
    expect(candidates).toEqual(['av1', 'h264', 'png']);
    await expect(service.routeOrThrow(candidates, 'auto')).resolves.toMatchObject({
      ok: true,
      codec: 'h264',
      pool: 'cpu',
    });
  });

  it('prefers a gpu node that proved the codec when the pool is auto', async () => {
    const { service } = await setUp([
      liveNode('cpu-1', 'cpu', ['h264']),
      liveNode('gpu-1', 'gpu', ['h264'], ['h264']),
    ]);
    await expect(service.routeOrThrow(['h264'], 'auto')).resolves.toMatchObject({
      codec: 'h264',
      pool: 'gpu',
    });
  });

  it('refuses with 400 a request with no codec, both codec and accept, or only unknown codecs', async () => {
    const { service } = await setUp();
    expect(() => service.candidates({})).toThrow(BadRequestException);
    expect(() => service.candidates({ codec: 'png', accept: 'png' })).toThrow(
      'give either codec or accept, not both',
    );
    expect(() => service.candidates({ accept: 'mp3,flac' })).toThrow(
      /accept lists no codec this service knows/,
    );
  });
});

describe('SubmissionPipeline limits', () => {
  const layout = { width: 4, height: 2, format: 'rgba' as const, frames: 2, codec: 'png' as const };

  it('answers the frame size and the batch size of a body that fits', async () => {
    const { service } = await setUp();
    expect(service.checkRawUpload(layout, 64)).toEqual({
      frameBytes: 32,
      totalBytes: 64,
      candidates: ['png'],
    });
  });

  it('refuses with 413 a frame over MAX_FRAME_PIXELS and a batch over MAX_FRAMES_PER_JOB', async () => {
    const { service } = await setUp();
    const { maxFramePixels, maxFramesPerJob } = loadApiConfig({});
    expect(() => service.checkRawUpload({ ...layout, width: maxFramePixels + 1, height: 1 }, null)).toThrow(
      PayloadTooLargeException,
    );
    expect(() => service.checkRawUpload({ ...layout, frames: maxFramesPerJob + 1 }, null)).toThrow(
      PayloadTooLargeException,
    );
  });

  it('refuses with 400 a declared length that is not the batch, and an empty compressed body', async () => {
    const { service } = await setUp();
    expect(() => service.checkRawUpload(layout, 63)).toThrow(BadRequestException);
    expect(() => service.checkRawUpload(layout, 0, 'gzip')).toThrow('the gzip body is empty');
    // A compressed body may have any length (its decompressed size is checked on the node).
    expect(service.checkRawUpload(layout, 10, 'gzip').totalBytes).toBe(64);
  });
});

describe('SubmissionPipeline enqueue', () => {
  it('retries recording and queueing (both idempotent) up to its attempts, recording the job once', async () => {
    const { service, fakes } = await setUp();
    fakes.jobs.createFailures.push(new Error('Connection is closed.'));
    fakes.queue.failures.push(new Error('Connection is closed.'));
    const accepted = await service.enqueue(storedJob('job-retried'), { tenant: 'acme', attempts: 3 });
    expect(accepted.id).toBe('job-retried');
    expect(fakes.jobs.creates).toBe(3);
    expect(fakes.jobs.records.size).toBe(1);
    expect(fakes.queue.added).toEqual([{ jobId: 'job-retried', priority: undefined }]);
    expect(fakes.frames.deleted).toEqual([]);
  });

  it('removes the stored input when queueing fails on its last attempt', async () => {
    const { service, fakes } = await setUp();
    fakes.queue.failures.push(new Error('queue down'));
    await expect(service.enqueue(storedJob('job-lost'), { tenant: 'acme' })).rejects.toThrow('queue down');
    expect(fakes.frames.deleted).toEqual(['job-lost']);
  });

  it("queues a live stream's batch on its node's own queue", async () => {
    const { service, fakes } = await setUp();
    await service.enqueue(storedJob('job-live'), { tenant: 'acme', node: 'node-7' });
    expect(fakes.queue.addedToNode).toEqual([{ node: 'node-7', jobId: 'job-live' }]);
    expect(fakes.queue.added).toEqual([]);
  });
});

describe('SubmissionPipeline withdraw', () => {
  it('fails an unfinished job: out of its queue, a failed event, its node told to stop', async () => {
    const { service, fakes } = await setUp();
    await service.enqueue(storedJob('job-withdrawn'), { tenant: 'acme' });
    await service.withdraw('job-withdrawn', 'cpu', 'its upload failed');
    expect(fakes.queue.removed).toEqual([{ pool: 'cpu', jobId: 'job-withdrawn' }]);
    expect(fakes.jobs.records.get('job-withdrawn')?.status).toBe('failed');
    expect(fakes.events.appended).toEqual([
      { jobId: 'job-withdrawn', event: { type: 'failed', error: 'its upload failed' } },
    ]);
    expect(fakes.cancellations.announced).toEqual(['job-withdrawn']);
  });

  it('leaves a finished job alone, telling nobody', async () => {
    const { service, fakes } = await setUp();
    await service.enqueue(storedJob('job-done'), { tenant: 'acme' });
    await fakes.jobs.fail('job-done', 'finished before', 1);
    await service.withdraw('job-done', 'cpu', 'cancelled by the client');
    expect(fakes.events.appended).toEqual([]);
    expect(fakes.cancellations.announced).toEqual([]);
  });
});

describe('SubmissionPipeline.receive', () => {
  function post(contentLength: number) {
    // Not read: the declared length is what is reserved.
    const body = Readable.from([]);
    return Object.assign(body, {
      headers: { authorization: 'Bearer key-a', 'content-length': String(contentLength) },
      socket: { bytesRead: 0 },
      complete: false,
    }) as unknown as Request;
  }

  it("reads the body within the client's byte caps, and gives its reservation back however it ends", async () => {
    const { service } = await setUp(undefined, { MAX_BODY_BYTES: '2000', UPLOAD_BYTES_PER_CLIENT: '3000' });
    // Two uploads of more than half the cap cannot be in flight at once for one client.
    const half = 1600;
    await service.receive(post(half), async () => {
      await expect(service.receive(post(half), () => Promise.resolve())).rejects.toThrow(
        TooManyJobsException,
      );
    });
    await expect(service.receive(post(half), () => Promise.reject(new Error('refused')))).rejects.toThrow(
      'refused',
    );
    await expect(service.receive(post(half), () => Promise.resolve('stored'))).resolves.toBe('stored');
  });

  it('refuses with 413 a declared body over MAX_BODY_BYTES before reading it', async () => {
    const { service } = await setUp(undefined, { MAX_BODY_BYTES: '2000' });
    const maxBodyBytes = 2000;
    let read = false;
    const refused = service.receive(post(maxBodyBytes + 1), () => Promise.resolve((read = true)));
    await expect(refused).rejects.toThrow(PayloadTooLargeException);
    expect(read).toBe(false);
  });
});
