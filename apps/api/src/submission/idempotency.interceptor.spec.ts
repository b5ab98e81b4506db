import { BadRequestException, UnprocessableEntityException } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { Test } from '@nestjs/testing';
import { defer, lastValueFrom } from 'rxjs';
import { KeySpace } from '#cluster';
import { attachPrincipal } from '../auth/tenancy.js';
import { REDIS } from '../dispatch/tokens.js';
import { API_CONFIG, loadApiConfig } from '../config/api-config.js';
import { FakeRedis } from '../testing/fakes.js';
import { IdempotencyPendingException, IdempotencyStore } from './idempotency.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';

interface FakeRequest {
  method: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  resumed: number;
  resume(): void;
}

function request(tenant: string, headers: Record<string, string>, query = { codec: 'png' }): FakeRequest {
  const fake: FakeRequest = {
    method: 'POST',
    query,
    headers: { 'content-type': 'application/octet-stream', 'content-length': '64', ...headers },
    resumed: 0,
    resume() {
      this.resumed++;
    },
  };
  attachPrincipal(fake, { tenant, operator: false });
  return fake;
}

async function setUp() {
  const redis = new FakeRedis();
  const module = await Test.createTestingModule({
    providers: [
      IdempotencyInterceptor,
      IdempotencyStore,
      { provide: REDIS, useValue: redis },
      { provide: KeySpace, useValue: new KeySpace('test') },
      { provide: API_CONFIG, useValue: loadApiConfig({}) },
    ],
  }).compile();
  const interceptor = module.get(IdempotencyInterceptor);
  let runs = 0;
  /** Sends `req` through the interceptor to a handler that answers a new job (or fails with `failure`). */
  const send = async (req: FakeRequest, failure?: Error): Promise<unknown> => {
    const handler = {
      handle: () =>
        defer(async () => {
          runs++;
          if (failure) throw failure;
          return { id: `job-${runs}` };
        }),
    };
    return lastValueFrom(await interceptor.intercept(new ExecutionContextHost([req, {}]), handler));
  };
  return { redis, send, runs: () => runs };
}

describe('IdempotencyInterceptor', () => {
  it('runs the handler for a request without Idempotency-Key, every time', async () => {
    const { redis, send, runs } = await setUp();
    await expect(send(request('acme', {}))).resolves.toEqual({ id: 'job-1' });
    await expect(send(request('acme', {}))).resolves.toEqual({ id: 'job-2' });
    expect(runs()).toBe(2);
    expect(redis.strings.size).toBe(0);
  });

  it('answers a repeat with the first answer, without running the handler, and reads off its body', async () => {
    const { send, runs } = await setUp();
    await expect(send(request('acme', { 'idempotency-key': 'k-1' }))).resolves.toEqual({ id: 'job-1' });
    const repeat = request('acme', { 'idempotency-key': 'k-1' });
    await expect(send(repeat)).resolves.toEqual({ id: 'job-1' });
    expect(runs()).toBe(1);
    expect(repeat.resumed).toBe(1);
  });

  it('refuses with 422 the same key for another request (other parameters or body length)', async () => {
    const { send, runs } = await setUp();
    await send(request('acme', { 'idempotency-key': 'k-1' }));
    const otherQuery = request('acme', { 'idempotency-key': 'k-1' }, { codec: 'webp' });
    const otherLength = request('acme', { 'idempotency-key': 'k-1', 'content-length': '65' });
    await expect(send(otherQuery)).rejects.toThrow(UnprocessableEntityException);
    await expect(send(otherLength)).rejects.toThrow(UnprocessableEntityException);
    expect(runs()).toBe(1);
  });

  it('answers 409 (retry later) while the first request with the key is still running', async () => {
    const { redis, send, runs } = await setUp();
    const fingerprint = 'POST|codec=png|application/octet-stream||64';
    redis.strings.set('test:idem:tenant-acme:k-1', JSON.stringify({ fingerprint, state: 'pending' }));
    await expect(send(request('acme', { 'idempotency-key': 'k-1' }))).rejects.toThrow(
      IdempotencyPendingException,
    );
    expect(runs()).toBe(0);
  });

  it('releases the key when the handler fails, so that a retry runs again', async () => {
    const { send, runs } = await setUp();
    await expect(
      send(request('acme', { 'idempotency-key': 'k-1' }), new Error('queue down')),
    ).rejects.toThrow('queue down');
    await expect(send(request('acme', { 'idempotency-key': 'k-1' }))).resolves.toEqual({ id: 'job-2' });
    expect(runs()).toBe(2);
  });

  it("keeps keys per tenant: another tenant's same key is another request", async () => {
    const { send, runs } = await setUp();
    await send(request('acme', { 'idempotency-key': 'k-1' }));
    await expect(send(request('other', { 'idempotency-key': 'k-1' }))).resolves.toEqual({ id: 'job-2' });
    expect(runs()).toBe(2);
  });

  it('refuses with 400 a key that is not 1-128 letters, digits, or _ . : -', async () => {
    const { send, runs } = await setUp();
    await expect(send(request('acme', { 'idempotency-key': 'a b' }))).rejects.toThrow(BadRequestException);
    expect(runs()).toBe(0);
  });
});
