import { NotFoundException, UnprocessableEntityException, BadRequestException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { frameByteLength, type EncodeJobData } from '../../../../libs/contracts/src/index.js';
import type { Principal } from '../auth/key-ring.js';
import { RetryLaterException } from '../common/http-errors.js';
import { jobRecord, jobsServiceFakes, liveNode, rawUpload } from '../testing/fakes.js';
import { CreateJobQuery } from './create-job.query.js';
import { JobsService } from './jobs.service.js';

const ACME: Principal = { tenant: 'acme', operator: false };
const OTHER: Principal = { tenant: 'other', operator: false };
const OPERATOR: Principal = { tenant: 'default', operator: true };

function query(fields: Partial<CreateJobQuery>): CreateJobQuery {
  return Object.assign(new CreateJobQuery(), { width: 4, height: 2, format: 'rgba', frames: 2 }, fields);
}

function storedJob(jobId: string, extra: Partial<EncodeJobData> = {}): EncodeJobData {
  return {
    jobId,
    codec: 'png',
    pool: 'cpu',
    width: 4,
    height: 2,
    format: 'rgba',
    frames: 2,
    settings: { quality: 80, speed: 70, fps: 30 },
    input: { encoding: 'identity', storedBytes: 64 },
    createdAt: 1,
    ...extra,
  };
}

async function setUp(nodes = [liveNode('cpu-1', 'cpu', ['png', 'h264'])]) {
  const { fakes, providers } = jobsServiceFakes(nodes);
  const module = await Test.createTestingModule({ providers }).compile();
  return { service: module.get(JobsService), fakes };
}

describe('JobsService routing', () => {
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

describe('JobsService submission', () => {
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

describe('JobsService visibility and cancel', () => {
  const ID = 'AAAAAAAAAAAAAAAA';

  async function withJob(status: 'queued' | 'active' | 'completed', tenant: string | null = 'acme') {
    const setup = await setUp();
    setup.fakes.jobs.records.set(ID, jobRecord(storedJob(ID), tenant, { status }));
    return setup;
  }

  it("answers another tenant's job exactly like an unknown one (404), and shows it to its owner and operators", async () => {
    const { service } = await withJob('queued');
    const unknown = await service.get('BBBBBBBBBBBBBBBB', ACME).catch((caught: unknown) => caught);
    const foreign = await service.get(ID, OTHER).catch((caught: unknown) => caught);
    expect(foreign).toBeInstanceOf(NotFoundException);
    expect((foreign as Error).message).toBe((unknown as Error).message.replace('BBBBBBBBBBBBBBBB', ID));
    await expect(service.get(ID, ACME)).resolves.toMatchObject({ id: ID, status: 'queued' });
    await expect(service.get(ID, OPERATOR)).resolves.toMatchObject({ id: ID });
  });

  it('shows a job made before tenancy to the default tenant only', async () => {
    const { service } = await withJob('queued', null);
    await expect(service.get(ID, { tenant: 'default', operator: false })).resolves.toMatchObject({ id: ID });
    await expect(service.get(ID, ACME)).rejects.toThrow(NotFoundException);
  });

  it('does not look up an id that cannot be a job id', async () => {
    const { service, fakes } = await withJob('queued');
    fakes.jobs.records.set('short', fakes.jobs.records.get(ID)!);
    await expect(service.get('short', OPERATOR)).rejects.toThrow(NotFoundException);
  });

  it('cancels an unfinished job: leaves the queue, fails with an event, tells the node, drops its input', async () => {
    const { service, fakes } = await withJob('active');
    const view = await service.cancel(ID, ACME);
    expect(view).toMatchObject({ id: ID, status: 'failed', error: 'cancelled by the client' });
    expect(fakes.queue.removed).toEqual([{ pool: 'cpu', jobId: ID }]);
    expect(fakes.events.appended).toEqual([
      { jobId: ID, event: { type: 'failed', error: 'cancelled by the client' } },
    ]);
    expect(fakes.cancellations.announced).toEqual([ID]);
    expect(fakes.frames.deleted).toEqual([ID]);
    expect(fakes.outputs.deletedAll).toEqual([ID]);
    expect(fakes.jobs.records.has(ID)).toBe(true);
  });

  it('deletes a finished job: its outputs and its record, answering it without outputs', async () => {
    const { service, fakes } = await withJob('completed');
    fakes.outputs.outputs.set(`${ID}/0`, Buffer.from('png'));
    const view = await service.cancel(ID, ACME);
    expect(view).toMatchObject({ id: ID, status: 'completed', outputs: [] });
    expect(fakes.outputs.outputs.size).toBe(0);
    expect(fakes.jobs.records.has(ID)).toBe(false);
    expect(fakes.queue.removed).toEqual([]);
    expect(fakes.events.appended).toEqual([]);
    expect(fakes.cancellations.announced).toEqual([]);
  });

  it("refuses to cancel another tenant's job (404) and leaves it alone", async () => {
    const { service, fakes } = await withJob('queued');
    await expect(service.cancel(ID, OTHER)).rejects.toThrow(NotFoundException);
    expect(fakes.jobs.records.get(ID)?.status).toBe('queued');
    expect(fakes.queue.removed).toEqual([]);
  });
});
