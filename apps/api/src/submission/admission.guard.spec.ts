import { HttpStatus } from '@nestjs/common';
import { GUARDS_METADATA, INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { Test } from '@nestjs/testing';
import { defer, lastValueFrom } from 'rxjs';
import { JobStore, KeySpace } from '#cluster';
import { attachPrincipal } from '../auth/tenancy.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { REDIS } from '../dispatch/tokens.js';
import { RetryLaterException } from '../common/http-errors.js';
import { API_CONFIG, loadApiConfig } from '../config/api-config.js';
import { EventHub } from '../delivery/event-hub.js';
import { JobsController } from '../jobs/jobs.controller.js';
import { StreamsController } from '../streams/streams.controller.js';
import { FakeRedis } from '../testing/fakes.js';
import { Admission, TooManyJobsException, clientIdOf } from './admission.js';
import { AdmissionGuard, AdmitsWork, AdmittedJobRecorder } from './admission.guard.js';
import { IdempotencyStore } from './idempotency.js';
import { Idempotent, IdempotencyInterceptor } from './idempotency.interceptor.js';

/** Two routes as the controllers declare theirs: a job (keys kept by the interceptor) and a stream batch. */
class Routes {
  @AdmitsWork((accepted: { id: string }) => accepted.id)
  @Idempotent()
  job() {}

  @AdmitsWork((accepted: { jobId: string }) => accepted.jobId)
  batch() {}
}

function request(key: string, headers: Record<string, string> = {}) {
  const fake = {
    method: 'POST',
    query: {},
    headers: { authorization: `Bearer ${key}`, ...headers },
    ip: '::1',
  };
  attachPrincipal(fake, { tenant: 'acme', operator: false });
  return fake;
}

async function setUp(env: Record<string, string> = {}) {
  const redis = new FakeRedis();
  const queue = { waiting: 0, waitingCount: () => Promise.resolve(queue.waiting) };
  const module = await Test.createTestingModule({
    providers: [
      AdmissionGuard,
      AdmittedJobRecorder,
      Admission,
      IdempotencyStore,
      Reflector,
      { provide: REDIS, useValue: redis },
      { provide: KeySpace, useValue: new KeySpace('test') },
      { provide: API_CONFIG, useValue: loadApiConfig(env) },
      { provide: EncodeQueue, useValue: queue },
      { provide: JobStore, useValue: { status: () => Promise.resolve('queued'), isFinal: () => false } },
      { provide: EventHub, useValue: { tap: () => undefined } },
    ],
  }).compile();
  const guard = module.get(AdmissionGuard);
  const recorder = module.get(AdmittedJobRecorder);
  const context = (route: 'job' | 'batch', req: object) =>
    new ExecutionContextHost([req, {}], Routes, Routes.prototype[route]);
  /** The route as Nest runs it: the guard, then the handler (answering `answer`) inside the recorder. */
  const send = async (route: 'job' | 'batch', req: object, answer: object | Error) => {
    await guard.canActivate(context(route, req));
    const handler = {
      handle: () => defer(() => (answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer))),
    };
    return lastValueFrom(recorder.intercept(context(route, req), handler));
  };
  return { redis, queue, guard, send, context };
}

describe('AdmissionGuard and AdmittedJobRecorder', () => {
  it("admits work until the client's unfinished jobs reach MAX_JOBS_PER_CLIENT, then 429 with Retry-After", async () => {
    const { send, redis } = await setUp({ MAX_JOBS_PER_CLIENT: '2' });
    await send('job', request('key-a'), { id: 'job-1' });
    await send('batch', request('key-a'), { jobId: 'job-2' });
    const client = clientIdOf(request('key-a'));
    expect([...(redis.sets.get(`test:client:${client}:jobs`)?.keys() ?? [])]).toEqual(['job-1', 'job-2']);
    const refused = await send('job', request('key-a'), { id: 'job-3' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TooManyJobsException);
    expect((refused as TooManyJobsException).getStatus()).toBe(HttpStatus.TOO_MANY_REQUESTS);
    expect((refused as TooManyJobsException).retryAfterSeconds).toBe(1);
    // Another client (another key) has its own count.
    await expect(send('job', request('key-b'), { id: 'job-4' })).resolves.toEqual({ id: 'job-4' });
  });

  it('answers 503 with Retry-After when the queues are deeper than MAX_QUEUE_DEPTH', async () => {
    const { send, queue } = await setUp({ MAX_QUEUE_DEPTH: '3' });
    queue.waiting = 3;
    const refused = await send('job', request('key-a'), { id: 'job-1' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RetryLaterException);
    expect((refused as RetryLaterException).getStatus()).toBe(503);
  });

  it('lets a repeat of an Idempotency-Key in use through on an idempotent route, even saturated', async () => {
    const { guard, context, queue, redis } = await setUp({ MAX_QUEUE_DEPTH: '3' });
    queue.waiting = 3;
    redis.strings.set('test:idem:tenant-acme:k-1', '{}');
    const repeat = request('key-a', { 'idempotency-key': 'k-1' });
    await expect(guard.canActivate(context('job', repeat))).resolves.toBe(true);
    // A new key is new work; a stream batch keeps its keys itself, so admission applies to it.
    const fresh = request('key-a', { 'idempotency-key': 'k-2' });
    await expect(guard.canActivate(context('job', fresh))).rejects.toThrow(RetryLaterException);
    await expect(guard.canActivate(context('batch', repeat))).rejects.toThrow(RetryLaterException);
  });

  it('counts no job against its client when the route fails', async () => {
    const { send, redis } = await setUp();
    await expect(send('job', request('key-a'), new Error('no node'))).rejects.toThrow('no node');
    expect(redis.sets.size).toBe(0);
  });

  it('is what the routes that queue work use; jobs and stream creation honour Idempotency-Key', () => {
    const guards = (route: object) => Reflect.getMetadata(GUARDS_METADATA, route) as unknown[];
    const interceptors = (route: object) => Reflect.getMetadata(INTERCEPTORS_METADATA, route) as unknown[];
    expect(guards(JobsController.prototype.create)).toEqual([AdmissionGuard]);
    // The job is recorded against its client before its key is answered (the outer interceptor).
    expect(interceptors(JobsController.prototype.create)).toEqual([
      IdempotencyInterceptor,
      AdmittedJobRecorder,
    ]);
    expect(guards(StreamsController.prototype.frames)).toEqual([AdmissionGuard]);
    expect(interceptors(StreamsController.prototype.frames)).toEqual([AdmittedJobRecorder]);
    expect(guards(StreamsController.prototype.create)).toBeUndefined();
    expect(interceptors(StreamsController.prototype.create)).toEqual([IdempotencyInterceptor]);
  });
});
