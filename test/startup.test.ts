import { EmbeddedRedis, freePort } from '../libs/cluster/src/index.js';
import { ScriptProcess } from './process-support.js';
import { tempDir } from './support.js';

/**
 * How the processes start as an operator runs them: settings read from the environment, a misconfiguration
 * stopped at start with one clear line, and nothing that was configured silently dropped.
 */
const KEY = 'startup-test-key-0123456789abcdef';

describe('npm start with API_KEYS in its environment', () => {
  let run: ScriptProcess | null = null;
  const data = tempDir('start-keys-');

  afterAll(async () => {
    await run?.stop('SIGKILL');
    data.remove();
  });

  it('registers its node with the key it runs the API with, and keeps serving', async () => {
    const port = await freePort();
    // No --demo: the service itself is what used to stop (its wait for the node polled without a key).
    run = new ScriptProcess('scripts/start.js', [], {
      API_KEYS: KEY,
      PORT: String(port),
      DATA_DIR: data.path,
      WORKER_CONCURRENCY: '1',
      REDIS_URL: undefined,
    });
    await run.waitFor(/encoder service up/, 90_000);
    expect(run.output).not.toMatch(/timed out waiting/);

    const nodes = await fetch(`http://127.0.0.1:${port}/v1/nodes`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(nodes.status).toBe(200);
    expect(((await nodes.json()) as { name: string }[]).map((node) => node.name)).toContain('local-cpu');
    expect((await fetch(`http://127.0.0.1:${port}/v1/nodes`)).status).toBe(401);

    expect(await run.stop('SIGTERM')).toBe(0);
  });
});

describe('API_KEYS that hold no key', () => {
  const data = tempDir('empty-keys-');
  const redis = new EmbeddedRedis({ port: 0, dataDir: data.path, appendOnly: false });
  beforeAll(() => redis.start());
  afterAll(async () => {
    await redis.stop();
    data.remove();
  });

  it.each([',', ' , ,'])(
    'API_KEYS=%j stops the API at start instead of running without authentication',
    async (value) => {
      const api = new ScriptProcess('apps/api/src/main.js', [], {
        API_KEYS: value,
        PORT: String(await freePort()),
        REDIS_URL: redis.url,
      });
      const outcome = await Promise.race([
        api.exited,
        api.waitFor(/API listening/, 60_000).then(() => 'listening'),
      ]);
      await api.stop('SIGKILL');
      expect(outcome).toBe(2);
      expect(api.output).toMatch(/configuration error: API_KEYS is set but holds no key/);
      expect(api.output.trim().split('\n')).toHaveLength(1);
    },
  );
});
