import { KeySpace, SessionTokens, type NodeRegistry, type RedisClient, type StreamRecord } from '#cluster';
import type { NodeRecord, SessionTokenClaims } from '#contracts';
import { ConfigError, loadApiConfig } from '../config/api-config.js';
import { liveNode } from '../testing/fakes.js';
import { SessionGrants, SessionSigner, relayBaseOf } from './session-grants.js';

const SECRET = 's'.repeat(40);

function record(fields: Partial<StreamRecord> = {}): StreamRecord {
  return {
    id: 'sAAAAAAAAAAAAAAAA',
    params: {
      codec: 'h264',
      mode: 'live',
      pool: 'cpu',
      width: 64,
      height: 48,
      format: 'bgra',
      quality: 80,
      speed: 70,
      fps: 30,
      keyframeInterval: 300,
    },
    state: 'open',
    nextSeq: 0,
    cursor: 0,
    frames: 0,
    lastEventId: 0,
    node: 'node-a',
    epoch: 3,
    createdAt: 0,
    tenant: null,
    ...fields,
  };
}

/** A Redis with only the two commands the shared secret needs. */
function fakeRedis() {
  const values = new Map<string, string>();
  let sets = 0;
  let failNext = false;
  const redis = {
    set: (key: string, value: string) => {
      sets++;
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
      }
      if (!values.has(key)) values.set(key, value);
      return Promise.resolve('OK');
    },
    get: (key: string) => Promise.resolve(values.get(key) ?? null),
  };
  return {
    redis: redis as unknown as RedisClient,
    values,
    sets: () => sets,
    failOnce: () => (failNext = true),
  };
}

function grantsWith(nodes: NodeRecord[], env: Record<string, string> = { CLUSTER_SECRETS: SECRET }) {
  const config = loadApiConfig({ SESSION_TOKEN_TTL_SECONDS: '120', ...env });
  const { redis } = fakeRedis();
  const signer = new SessionSigner(config, redis, new KeySpace('test'));
  const registry = { get: (id: string) => Promise.resolve(nodes.find((node) => node.id === id) ?? null) };
  return new SessionGrants(config, signer, registry as unknown as NodeRegistry);
}

const nodeA = { ...liveNode('node-a', 'cpu', ['h264']), id: 'node-a', dataUrl: 'ws://10.0.0.5:7000' };

describe('SessionGrants.grantFor', () => {
  it('grants the session on the pinned node, a token bound to stream, node and epoch, and the relay', async () => {
    const before = Date.now();
    const grant = await grantsWith([nodeA]).grantFor(record(), 'wss://api.example');
    expect(grant).toMatchObject({
      url: 'ws://10.0.0.5:7000/v1/streams/sAAAAAAAAAAAAAAAA/session',
      node: 'node-a',
      relayUrl: 'wss://api.example/v1/streams/sAAAAAAAAAAAAAAAA/session',
    });
    const claims = new SessionTokens([SECRET]).verify(grant!.token) as SessionTokenClaims;
    expect(claims).toMatchObject({ stream: 'sAAAAAAAAAAAAAAAA', node: 'node-a', epoch: 3 });
    expect(claims.exp).toBe(Date.parse(grant!.expiresAt));
    expect(claims.exp - before).toBeGreaterThanOrEqual(120_000);
    expect(claims.exp - before).toBeLessThan(180_000);
    // Another secret does not vouch for it.
    expect(new SessionTokens(['t'.repeat(40)]).verify(grant!.token)).toBe('forged');
  });

  it('grants nothing for a batch stream, a closed or ended one, or a node without a data port or gone', async () => {
    const grants = grantsWith([nodeA, { ...nodeA, id: 'node-old', dataUrl: undefined }]);
    const batch = record({ params: { ...record().params, mode: 'batch' }, node: null });
    for (const stream of [
      batch,
      record({ state: 'closed' }),
      record({ state: 'ended' }),
      record({ node: 'node-old' }),
      record({ node: 'node-gone' }),
    ])
      expect(await grants.grantFor(stream, 'ws://api')).toBeUndefined();
  });
});

describe('SessionSigner', () => {
  it('signs with CLUSTER_SECRETS when set, never writing a secret to Redis', async () => {
    const redis = fakeRedis();
    const signer = new SessionSigner(
      loadApiConfig({ CLUSTER_SECRETS: SECRET }),
      redis.redis,
      new KeySpace('t'),
    );
    const { token } = (await signer.signer()).issue({ stream: 's', node: 'n', epoch: 0 }, 1000);
    expect(new SessionTokens([SECRET]).verify(token)).toMatchObject({ stream: 's' });
    expect(redis.values.size).toBe(0);
  });

  it("without it on loopback, shares Redis's secret, retrying after Redis was away", async () => {
    const redis = fakeRedis();
    const keys = new KeySpace('t');
    const signer = new SessionSigner(loadApiConfig({}), redis.redis, keys);
    redis.failOnce();
    await expect(signer.signer()).rejects.toThrow(/enableOfflineQueue/);
    const { token } = (await signer.signer()).issue({ stream: 's', node: 'n', epoch: 0 }, 1000);
    const shared = redis.values.get(keys.clusterSecret)!;
    expect(shared.length).toBeGreaterThanOrEqual(32);
    expect(new SessionTokens([shared]).verify(token)).toMatchObject({ node: 'n' });
    await signer.signer();
    expect(redis.sets()).toBe(2);
  });

  it('stops the start beyond loopback without CLUSTER_SECRETS', () => {
    expect(() => loadApiConfig({ HOST: '0.0.0.0', API_KEYS: 'k'.repeat(32) })).toThrow(ConfigError);
    expect(() => loadApiConfig({ HOST: '0.0.0.0', API_KEYS: 'k'.repeat(32) })).toThrow(
      /^CLUSTER_SECRETS is required when the API listens beyond loopback \(HOST=0\.0\.0\.0\)/,
    );
    expect(
      loadApiConfig({ HOST: '0.0.0.0', API_KEYS: 'k'.repeat(32), CLUSTER_SECRETS: SECRET }).sessions,
    ).toMatchObject({ clusterSecrets: [SECRET], beyondLoopback: true });
  });
});

describe('relayBaseOf', () => {
  const plain = { host: '127.0.0.1', port: 3000, tls: null };
  const tls = { ...plain, tls: { cert: Buffer.alloc(0), key: Buffer.alloc(0) } };

  it('is the API as the client reached it: ws, or wss over TLS or behind a proxy that says https', () => {
    expect(relayBaseOf({ host: 'api.example:8080' }, plain)).toBe('ws://api.example:8080');
    expect(relayBaseOf({ host: 'api.example' }, tls)).toBe('wss://api.example');
    expect(relayBaseOf({ host: '[::1]:3000' }, plain)).toBe('ws://[::1]:3000');
    expect(
      relayBaseOf(
        { host: 'backend:3000', 'x-forwarded-host': 'encoder.example.com', 'x-forwarded-proto': 'https' },
        plain,
      ),
    ).toBe('wss://encoder.example.com');
  });

  it('falls back to HOST:PORT for a missing or malformed Host', () => {
    expect(relayBaseOf({}, plain)).toBe('ws://127.0.0.1:3000');
    expect(relayBaseOf({ host: 'evil/path?x' }, plain)).toBe('ws://127.0.0.1:3000');
    expect(relayBaseOf({}, { ...plain, host: '::1' })).toBe('ws://[::1]:3000');
  });
});

describe('session settings', () => {
  it('reads SESSION_TOKEN_TTL_SECONDS (default 300) and SESSION_PROBE_TIMEOUT_MS (default 300), checked', () => {
    expect(loadApiConfig({}).sessions).toMatchObject({ tokenTtlMs: 300_000, probeTimeoutMs: 300 });
    expect(loadApiConfig({ SESSION_TOKEN_TTL_SECONDS: '60' }).sessions.tokenTtlMs).toBe(60_000);
    expect(() => loadApiConfig({ SESSION_TOKEN_TTL_SECONDS: '5' })).toThrow(
      'SESSION_TOKEN_TTL_SECONDS must be an integer from 10 to 86400, got "5"',
    );
    expect(() => loadApiConfig({ SESSION_PROBE_TIMEOUT_MS: 'soon' })).toThrow(
      /^SESSION_PROBE_TIMEOUT_MS must be an integer/,
    );
    expect(() => loadApiConfig({ CLUSTER_SECRETS: 'short' })).toThrow(/^CLUSTER_SECRETS must be one or two/);
  });
});
