import type { JobView } from '#contracts';
import { EncoderApiClient, type ApiError } from '#client';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir } from './support.js';

/**
 * Admission control with real processes. The only node is frozen (SIGSTOP), so the queue depth is
 * exactly what the test submitted.
 */
const KEY_1 = 'key-one-0123456789abcdef';
const KEY_2 = 'key-two-0123456789abcdef';

describe('backpressure and idempotency', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-backpressure-');
  const { request, body } = bgraBatch('png', 32, 24, 1);
  let one: EncoderApiClient;
  let two: EncoderApiClient;

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: { API_KEYS: `one:${KEY_1},two:${KEY_2}`, MAX_QUEUE_DEPTH: '3', MAX_JOBS_PER_CLIENT: '2' },
      workers: [{ name: 'frozen', concurrency: 1, timeoutSeconds: 60 }],
    });
    one = new EncoderApiClient(stack.apiUrl, KEY_1);
    two = new EncoderApiClient(stack.apiUrl, KEY_2);
    stack.freezeWorker('frozen', true);
  }, 60_000);

  afterAll(async () => {
    stack?.freezeWorker('frozen', false);
    await stack?.stop();
    dir.remove();
  });

  const accepted: { client: EncoderApiClient; id: string }[] = [];
  const rejection = (promise: Promise<unknown>) =>
    promise.then(
      () => null,
      (error: ApiError) => error,
    );

  it('answers 429 with Retry-After past the per-client limit, 503 with Retry-After past the queue depth', async () => {
    for (let index = 0; index < 2; index++)
      accepted.push({ client: one, id: (await one.submitRaw(request, body)).id });
    const tooMany = await rejection(one.submitRaw(request, body));
    expect(tooMany).toMatchObject({ status: 429 });
    expect(String((tooMany!.body as { message: string }).message)).toMatch(
      /2 unfinished jobs, the limit is 2/,
    );

    accepted.push({
      client: two,
      id: (await two.submitRaw(request, body, { 'idempotency-key': 'batch-7' })).id,
    });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const response = await fetch(`${stack.apiUrl}/v1/jobs?codec=png&width=32&height=24&format=bgra`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY_2}`, 'content-type': 'application/octet-stream' },
      body,
    });
    expect(response.status).toBe(503);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await response.json()) as { message: string }).message).toMatch(/saturated: 3 jobs are waiting/);
  });

  it('an Idempotency-Key repeat returns the first job, even when saturated; the same key for another request is refused', async () => {
    const first = await two
      .submitRaw(request, body, { 'idempotency-key': 'batch-8' })
      .catch((error: ApiError) => error);
    // Saturated now: a new key is refused like any new work...
    expect(first).toMatchObject({ status: 503 });
    // ...while a repeat of a key that was accepted returns that job and adds nothing.
    const repeat = await two.submitRaw(request, body, { 'idempotency-key': 'batch-7' });
    expect(repeat.id).toBe(accepted[2].id);
    const other = bgraBatch('png', 32, 24, 2);
    const misuse = await rejection(
      two.submitRaw(other.request, other.body, { 'idempotency-key': 'batch-7' }),
    );
    expect(misuse).toMatchObject({ status: 422 });
    // Keys are per tenant: the other tenant gets its own job (or its own limit), never KEY_2's job.
    const elsewhere = await rejection(one.submitRaw(request, body, { 'idempotency-key': 'batch-7' }));
    expect(elsewhere).toMatchObject({ status: 503 });
  });

  it('once the node runs again, every accepted job completes', async () => {
    stack.freezeWorker('frozen', false);
    const finished: JobView[] = await Promise.all(accepted.map(({ client, id }) => client.waitFor(id)));
    expect(finished.map((job) => job.status)).toEqual(['completed', 'completed', 'completed']);
  });
});
