import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { EmbeddedRedis, freePort } from '#cluster';
import { ScriptProcess } from './process-support.js';
import { selfSignedCertificate, tempDir } from './support.js';

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

describe('npm start listening beyond loopback', () => {
  let run: ScriptProcess | null = null;
  const data = tempDir('start-public-');

  afterAll(async () => {
    await run?.stop('SIGKILL');
    data.remove();
  });

  it('makes the cluster secret its API and node share when CLUSTER_SECRETS is unset', async () => {
    const port = await freePort();
    run = new ScriptProcess('scripts/start.js', [], {
      API_KEYS: KEY,
      HOST: '0.0.0.0',
      PORT: String(port),
      DATA_DIR: data.path,
      WORKER_CONCURRENCY: '1',
      REDIS_URL: undefined,
      CLUSTER_SECRETS: undefined,
    });
    await run.waitFor(/encoder service up/, 90_000);
    const nodes = await fetch(`http://127.0.0.1:${port}/v1/nodes`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(((await nodes.json()) as { name: string }[]).map((node) => node.name)).toContain('local-cpu');
    expect(run.output).not.toMatch(/configuration error/);
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

describe('a Redis that refuses the password', () => {
  const PASSWORD = 'right-password-0123456789';
  const WRONG = 'wrong-password-9876543210';
  const data = tempDir('redis-auth-');
  const redis = new EmbeddedRedis({ port: 0, dataDir: data.path, appendOnly: false });
  const running: ScriptProcess[] = [];
  beforeAll(async () => {
    await redis.start();
    // As `--requirepass` would (EmbeddedRedis's readiness probe has no password).
    const admin = new Redis(redis.port, '127.0.0.1');
    await admin.config('SET', 'requirepass', PASSWORD);
    admin.disconnect();
  });
  afterAll(async () => {
    await Promise.all(running.map((run) => run.stop('SIGKILL')));
    await redis.stop();
    data.remove();
  });

  /** Resolves with the exit code, or 'running' if the process is still up after printing `ready`. */
  async function outcome(run: ScriptProcess, ready: RegExp): Promise<number | null | 'running'> {
    running.push(run);
    return Promise.race([run.exited, run.waitFor(ready, 60_000).then(() => 'running' as const)]);
  }

  it.each([
    ['api', '', 'apps/api/src/main.js', []],
    ['api', 'app', 'apps/api/src/main.js', []],
    ['worker', '', 'apps/worker/src/main.js', ['--name', 'refused']],
    ['worker', 'app', 'apps/worker/src/main.js', ['--name', 'refused']],
  ])(
    'the %s stops with one configuration-error line (user %j), the password never printed',
    async (_, user, script, args) => {
      const run = new ScriptProcess(script, args, {
        REDIS_URL: `redis://${user}:${WRONG}@127.0.0.1:${redis.port}`,
        PORT: String(await freePort()),
        API_KEYS: undefined,
      });
      expect(await outcome(run, /API listening|serving encode/)).toBe(2);
      expect(run.output).not.toContain(WRONG);
      expect(run.output.trim().split('\n')).toEqual([
        expect.stringMatching(
          /^configuration error: .*Redis at redis:\/\/\w*:\*\*\*@127\.0\.0\.1:\d+ refused the credentials \(WRONGPASS\)/,
        ),
      ]);
    },
  );

  it('a node whose password stops working while it runs exits with one line, the password never printed', async () => {
    const run = new ScriptProcess('apps/worker/src/main.js', ['--name', 'rotated', '--concurrency', '1'], {
      REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${redis.port}`,
    });
    running.push(run);
    await run.waitFor(/serving encode/, 60_000);
    const admin = new Redis(redis.port, '127.0.0.1', { password: PASSWORD });
    try {
      await admin.config('SET', 'requirepass', `${PASSWORD}-rotated`);
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal');
    } finally {
      admin.disconnect();
    }
    expect(await run.exitWithin(60_000)).toBe(2);
    expect(run.output).not.toContain(PASSWORD);
    const fatal = run.output.split('\n').filter((line) => line.includes('refused the credentials'));
    expect(fatal).toHaveLength(1);
    expect(JSON.parse(fatal[0])).toMatchObject({ level: 'fatal' });
  });
});

describe('a node whose Redis cannot be reached', () => {
  const data = tempDir('redis-away-');
  let redis: EmbeddedRedis | null = null;
  let run: ScriptProcess | null = null;
  afterAll(async () => {
    await run?.stop('SIGKILL');
    await redis?.stop();
    data.remove();
  });

  it('says so at once and at each reconnect step, then when Redis is back, and starts serving', async () => {
    const port = await freePort();
    run = new ScriptProcess('apps/worker/src/main.js', ['--name', 'lonely', '--concurrency', '1'], {
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    await run.waitFor(/Redis at redis:\/\/127\.0\.0\.1:\d+ unreachable \(connect ECONNREFUSED/, 60_000);
    await run.waitFor(
      /still unreachable after [\d.]+ s \(connect ECONNREFUSED[^)]*\): reconnect attempt \d+ in \d+ ms/,
      60_000,
    );
    expect(run.output).not.toMatch(/serving encode/);

    redis = new EmbeddedRedis({ port, dataDir: data.path, appendOnly: false });
    await redis.start();
    await run.waitFor(/reachable again after/, 60_000);
    await run.waitFor(/serving encode/, 60_000);
    const lines = run.output.trim().split('\n');
    // JSON lines only (no error objects dumped by a library), and no line per failing connection.
    expect(lines.every((line) => line.startsWith('{'))).toBe(true);
    expect(run.output).not.toMatch(/queue encode\.\S+: connect ECONNREFUSED/);
    expect(await run.stop('SIGTERM')).toBe(0);
  });
});

/** One HTTPS GET to 127.0.0.1 that trusts `ca` only (or the system's CAs without it). */
function httpsGet(
  port: number,
  path: string,
  ca?: Buffer,
  key?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, ca, headers: key ? { authorization: `Bearer ${key}` } : {} },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS', () => {
  const dir = tempDir('tls-');
  const redis = new EmbeddedRedis({ port: 0, dataDir: join(dir.path, 'redis'), appendOnly: false });
  const certFile = join(dir.path, 'cert.pem');
  const keyFile = join(dir.path, 'key.pem');
  let cert: Buffer;
  const running: ScriptProcess[] = [];

  beforeAll(async () => {
    await redis.start();
    // A self-signed certificate for 127.0.0.1, made as an operator would for a test box.
    await selfSignedCertificate(keyFile, certFile);
    cert = readFileSync(certFile);
  });
  afterAll(async () => {
    await Promise.all(running.map((run) => run.stop('SIGKILL')));
    await redis.stop();
    dir.remove();
  });

  function startApi(env: Record<string, string | undefined>): ScriptProcess {
    const run = new ScriptProcess('apps/api/src/main.js', [], {
      REDIS_URL: redis.url,
      API_KEYS: KEY,
      // Beyond loopback the API needs the cluster's session-token secret.
      CLUSTER_SECRETS: 'c'.repeat(32),
      ...env,
    });
    running.push(run);
    return run;
  }

  it('serves the API over HTTPS with the given certificate and key, the keys checked as over HTTP', async () => {
    const port = await freePort();
    const api = startApi({
      HOST: '0.0.0.0',
      PORT: String(port),
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
    });
    await api.waitFor(/API listening on https:\/\/0\.0\.0\.0:\d+/, 60_000);

    expect(await httpsGet(port, '/health/live', cert)).toMatchObject({ status: 200 });
    const nodes = await httpsGet(port, '/v1/nodes', cert, KEY);
    expect(nodes.status).toBe(200);
    expect(JSON.parse(nodes.body)).toEqual([]);
    expect((await httpsGet(port, '/v1/nodes', cert)).status).toBe(401);
    // WebSockets upgrade on the same TLS server: an unknown stream is refused at the upgrade, as over HTTP.
    const upgrade = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(`wss://127.0.0.1:${port}/v1/streams/no-such-stream/ws`, {
        ca: cert,
        headers: { authorization: `Bearer ${KEY}` },
      });
      socket.on('unexpected-response', (_, response) => resolve(response.statusCode ?? 0));
      socket.on('open', () => reject(new Error('opened a socket for an unknown stream')));
      socket.on('error', reject);
    });
    expect(upgrade).toBe(404);
    // The handshake really is the given certificate's: a client that does not trust it refuses.
    await expect(httpsGet(port, '/health/live')).rejects.toThrow(/self[- ]signed/);
    // And plain HTTP on that port gets no answer.
    expect(
      await fetch(`http://127.0.0.1:${port}/health/live`).then(
        (res) => res.status,
        () => 'no answer',
      ),
    ).toBe('no answer');
    expect(api.output).not.toMatch(/plain HTTP/);
  });

  it('says at start that it serves plain HTTP beyond loopback without TLS', async () => {
    const api = startApi({ HOST: '0.0.0.0', PORT: String(await freePort()) });
    await api.waitFor(/API listening on http:\/\/0\.0\.0\.0/, 60_000);
    await api.waitFor(
      /serving plain HTTP on 0\.0\.0\.0: API keys and frames cross the network in clear text/,
      10_000,
    );
  });

  it('npm start refuses TLS settings that its plain-HTTP supervisor could not honour, before starting anything', async () => {
    const run = new ScriptProcess('scripts/start.js', [], {
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
      PORT: String(await freePort()),
      DATA_DIR: join(dir.path, 'start'),
      REDIS_URL: undefined,
    });
    running.push(run);
    expect(await run.exitWithin(60_000)).toBe(1);
    expect(run.output.trim()).toMatch(/^TLS_CERT_FILE\/TLS_KEY_FILE are for `npm run api`/);
    expect(run.output).not.toMatch(/redis|API listening/i);
  });

  it('beyond loopback without CLUSTER_SECRETS the API stops at start with a line naming the setting', async () => {
    const api = startApi({ HOST: '0.0.0.0', PORT: String(await freePort()), CLUSTER_SECRETS: undefined });
    expect(await api.exitWithin(60_000)).toBe(2);
    expect(api.output.trim()).toMatch(
      /^configuration error: CLUSTER_SECRETS is required when the API listens beyond loopback \(HOST=0\.0\.0\.0\)/,
    );
    const short = startApi({ PORT: String(await freePort()), CLUSTER_SECRETS: 'too-short' });
    expect(await short.exitWithin(60_000)).toBe(2);
    expect(short.output.trim()).toMatch(/^configuration error: CLUSTER_SECRETS must be one or two/);
  });

  it('a certificate without its key stops the start with a line naming both settings', async () => {
    const api = startApi({ PORT: String(await freePort()), TLS_CERT_FILE: certFile });
    expect(await api.exitWithin(60_000)).toBe(2);
    expect(api.output.trim()).toMatch(/^configuration error: TLS_CERT_FILE and TLS_KEY_FILE go together/);
  });
});
