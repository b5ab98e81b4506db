import { KeySpace, createRedisConnection, type RedisClient } from '#cluster';
import { ServiceStack } from '#scripts/lib/stack.js';
import { bgraBatch, tempDir } from './support.js';
import { createStream, readSse, submitFrames } from './stream-support.js';

/**
 * RETENTION_SECONDS is one setting that the API and the nodes both read: what a node writes (outputs,
 * job records, event logs, stream logs) expires when the API says, not after a node's own hour.
 */
const RETENTION_SECONDS = 300;

describe('RETENTION_SECONDS, read by the API and the nodes alike', () => {
  const dir = tempDir('encoder-retention-');
  const keys = new KeySpace('encoder');
  const job = bgraBatch('jpeg', 64, 48, 2);
  const batch = bgraBatch('jpeg', 64, 48, 1);
  let stack: ServiceStack;
  let redis: RedisClient;

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: { RETENTION_SECONDS: String(RETENTION_SECONDS) },
      workers: [{ name: 'retention-node', concurrency: 1 }],
    });
    redis = createRedisConnection({ url: stack.redisUrl, role: 'worker', name: 'test' });
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
    dir.remove();
  });

  /** Each key's TTL in seconds (-2: no such key, -1: no expiry). */
  const ttls = async (names: string[]) =>
    Object.fromEntries(await Promise.all(names.map(async (name) => [name, await redis.ttl(name)] as const)));
  const keptFor = (ttl: number) => ttl > 0 && ttl <= RETENTION_SECONDS;

  it("a finished job's record, outputs and event log expire after RETENTION_SECONDS", async () => {
    const accepted = await stack.client.submitRaw(job.request, job.body);
    const view = await stack.client.waitFor(accepted.id);
    expect(view.status).toBe('completed');
    const found = await ttls([
      keys.jobRecord(accepted.id),
      keys.output(accepted.id, 0),
      keys.output(accepted.id, 1),
      keys.events(accepted.id),
      keys.emitted(accepted.id),
    ]);
    expect(Object.entries(found).filter(([, ttl]) => !keptFor(ttl))).toEqual([]);
  });

  it("a stream's record and log, and its batch's outputs, expire after RETENTION_SECONDS", async () => {
    const stream = await createStream(stack.apiUrl, { codec: 'jpeg', width: 64, height: 48, format: 'bgra' });
    const accepted = await submitFrames(stack.apiUrl, stream.id, batch.body, 1);
    expect(accepted.status).toBe(202);
    const events = await readSse(stack.apiUrl, stream.id, { stopAfter: 2 });
    expect(events.map((event) => event.type)).toEqual(['output', 'batch']);
    const found = await ttls([
      keys.streamRecord(stream.id),
      keys.streamLog(stream.id),
      keys.jobRecord(accepted.body.jobId),
      keys.output(accepted.body.jobId, 0),
    ]);
    expect(Object.entries(found).filter(([, ttl]) => !keptFor(ttl))).toEqual([]);
  });
});
