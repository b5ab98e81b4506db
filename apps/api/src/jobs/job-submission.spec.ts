import { BadRequestException, UnprocessableEntityException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { frameByteLength } from '../../../../libs/contracts/src/index.js';
import { RetryLaterException } from '../common/http-errors.js';
import { submissionFakes, liveNode, rawUpload } from '../testing/fakes.js';
import { CreateJobQuery } from './create-job.query.js';
import { JobSubmission } from './job-submission.js';

function query(fields: Partial<CreateJobQuery>): CreateJobQuery {
  return Object.assign(new CreateJobQuery(), { width: 4, height: 2, format: 'rgba', frames: 2 }, fields);
}

async function setUp(nodes = [liveNode('cpu-1', 'cpu', ['png', 'h264'])]) {
  const { fakes, providers } = submissionFakes(nodes);
  const module = await Test.createTestingModule({ providers: [JobSubmission, ...providers] }).compile();
  return { service: module.get(JobSubmission), fakes };
}

describe('JobSubmission of raw frames', () => {
  it('answers 503 with Retry-After when no node is alive, and stores nothing', async () => {
    const { service, fakes } = await setUp([]);
    const error = await service
      .submitRaw(query({ codec: 'png' }), rawUpload(Buffer.alloc(64)), 64, 'identity', 'acme')
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RetryLaterException);
    expect((error as RetryLaterException).getStatus()).toBe(503);
    expect((error as RetryLaterException).retryAfterSeconds).toBe(5);
    expect(fakes.frames.frames.size).toBe(0);
    expect(fakes.jobs.records.size).toBe(0);
  });

  it('answers 422 naming what the cluster offers when no live node encodes the codec', async () => {
    const { service, fakes } = await setUp();
    const error = await service
      .submitRaw(query({ codec: 'av1' }), rawUpload(Buffer.alloc(64)), 64, 'identity', 'acme')
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnprocessableEntityException);
    expect((error as UnprocessableEntityException).getResponse()).toEqual({
      message: 'no live node can encode av1; the cluster offers: h264, png',
      available: ['h264', 'png'],
    });
    expect(fakes.frames.frames.size).toBe(0);
  });

  it('stores the frames, records the job for its tenant and queues it on the routed pool', async () => {
    const { service, fakes } = await setUp();
    const body = Buffer.alloc(frameByteLength(4, 2, 'rgba') * 2, 7);
    const accepted = await service.submitRaw(
      query({ codec: 'png', priority: 3 }),
      rawUpload(body, 5),
      body.length,
      'identity',
      'acme',
    );
    expect(accepted).toMatchObject({ status: 'queued', codec: 'png', pool: 'cpu', frames: 2 });
    expect(fakes.frames.frames.get(accepted.id)).toEqual([body.subarray(0, 32), body.subarray(32)]);
    expect(fakes.jobs.records.get(accepted.id)?.tenant).toBe('acme');
    expect(fakes.queue.added).toEqual([{ jobId: accepted.id, priority: 3 }]);
  });

  it('refuses a body whose length does not match the parameters before storing anything', async () => {
    const { service, fakes } = await setUp();
    await expect(
      service.submitRaw(query({ codec: 'png' }), rawUpload(Buffer.alloc(60)), 60, 'identity', 'acme'),
    ).rejects.toThrow(BadRequestException);
    expect(fakes.frames.frames.size).toBe(0);
    expect(fakes.queue.added).toEqual([]);
  });
});
