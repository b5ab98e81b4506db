import {
  ConfigError,
  LIVE_CONTEXT_BYTES,
  WORKER_USAGE,
  defaultLiveMaxContexts,
  parseNodeArgs,
} from './node-config.js';
import { loadSharedConfig } from '#cluster/shared-config.js';

const defaults = { cores: 4, pid: 42, host: 'box', freeMemory: 8 * 1024 ** 3 };
const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => parseNodeArgs(args, env, defaults);

describe('parseNodeArgs', () => {
  it('has defaults an operator can rely on', () => {
    expect(parse([])).toMatchObject({
      pool: 'cpu',
      concurrency: 4,
      timeoutMs: 10_000,
      reconnectDelayMs: 500,
      drainTimeoutMs: 30_000,
      name: 'box-42',
      codecs: null,
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'encoder',
      softwareGpu: false,
      syntheticCostMs: null,
    });
  });

  it('reads every flag, in --flag value and --flag=value forms', () => {
    const config = parse(
      [
        '--pool',
        'gpu',
        '--concurrency=3',
        '--timeout',
        '2.5',
        '--reconnect-delay',
        '0.2',
        '--name',
        'n1',
        '--codecs',
        'h264, JPEG',
        '--redis',
        'redis://r:1',
        '--drain-timeout',
        '5',
      ],
      { REDIS_URL: 'redis://ignored:1', QUEUE_PREFIX: 'p' },
    );
    expect(config).toMatchObject({
      pool: 'gpu',
      concurrency: 3,
      timeoutMs: 2500,
      reconnectDelayMs: 200,
      name: 'n1',
      codecs: ['h264', 'jpeg'],
      redisUrl: 'redis://r:1',
      queuePrefix: 'p',
      drainTimeoutMs: 5000,
    });
  });

  it('reads the settings it shares with the API from the environment, as the API does', () => {
    const env = {
      REDIS_URL: 'redis://r:1',
      QUEUE_PREFIX: 'p',
      RETENTION_SECONDS: '120',
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'on',
    };
    expect(parse([], env)).toMatchObject(loadSharedConfig(env));
    expect(parse([], env)).toMatchObject({ retentionSeconds: 120, logLevel: 'warn', logPretty: true });
    expect(parse([]).retentionSeconds).toBe(3600);
    expect(() => parse([], { RETENTION_SECONDS: '5' })).toThrow(
      new ConfigError('RETENTION_SECONDS must be an integer from 10 to 604800, got "5"'),
    );
    expect(() => parse([], { LOG_PRETTY: 'maybe' })).toThrow(ConfigError);
    expect(WORKER_USAGE).toMatch(/RETENTION_SECONDS/);
  });

  it('takes the test-only --synthetic-cost-ms in whole milliseconds, 1 to 10000, and says so in --help', () => {
    expect(parse(['--synthetic-cost-ms', '50']).syntheticCostMs).toBe(50);
    expect(parse(['--synthetic-cost-ms=1']).syntheticCostMs).toBe(1);
    expect(parse(['--synthetic-cost-ms', '10000']).syntheticCostMs).toBe(10_000);
    expect(WORKER_USAGE).toMatch(/--synthetic-cost-ms N +test only/);
  });

  it('caps live contexts at 4 per slot, at most what half the free memory holds, or at --live-max-contexts', () => {
    expect(parse([]).liveMaxContexts).toBe(16);
    expect(parse(['--concurrency', '1']).liveMaxContexts).toBe(4);
    expect(parse(['--concurrency', '64']).liveMaxContexts).toBe(32); // 4 GiB / 128 MiB
    expect(defaultLiveMaxContexts(2, 3 * LIVE_CONTEXT_BYTES)).toBe(1);
    expect(defaultLiveMaxContexts(2, 0)).toBe(1);
    expect(parse(['--live-max-contexts', '1']).liveMaxContexts).toBe(1);
    expect(parse(['--live-max-contexts=200']).liveMaxContexts).toBe(200);
    expect(WORKER_USAGE).toMatch(/--live-max-contexts N/);
  });

  it.each([
    [['--live-max-contexts', '0'], /--live-max-contexts must be an integer from 1 to 1024, got "0"/],
    [['--live-max-contexts', '2.5'], /--live-max-contexts must be an integer/],
    [['--synthetic-cost-ms', '0'], /--synthetic-cost-ms must be an integer from 1 to 10000, got "0"/],
    [['--synthetic-cost-ms', '10001'], /--synthetic-cost-ms must be an integer from 1 to 10000/],
    [['--synthetic-cost-ms', '2.5'], /--synthetic-cost-ms must be an integer/],
    [['--synthetic-cost-ms', '-5'], /--synthetic-cost-ms must be an integer/],
    [['--synthetic-cost-ms=fast'], /--synthetic-cost-ms must be an integer/],
    [['--synthetic-cost-ms'], /--synthetic-cost-ms needs a value/],
    [['--synthetic-cost-ms', '--timeout', '2'], /--synthetic-cost-ms needs a value/],
    [['--pool', 'tpu'], /--pool must be cpu or gpu/],
    [['--concurrency', '0'], /--concurrency must be an integer from 1 to 64/],
    [['--concurrency', '1.5'], /--concurrency must be an integer/],
    [['--timeout', 'abc'], /--timeout must be a number from 1 to 600/],
    [['--reconnect-delay', '0'], /--reconnect-delay must be a number/],
    [['--codecs', 'h264,gif'], /unknown: gif/],
    [['--redis', 'http://x'], /--redis: .*must be one of redis:\/\//],
    [['--queue-prefix', 'a b'], /--queue-prefix must be 1-64 letters/],
    [['--name', 'a b'], /--name must be/],
    [['--bogus', '1'], /unknown option --bogus/],
    [['--constructor', '1'], /unknown option --constructor/],
    [['--timeout'], /--timeout needs a value/],
    [['stray'], /unexpected argument "stray"/],
  ])('refuses %j with a clear message', (args, message) => {
    expect(() => parse(args)).toThrow(ConfigError);
    expect(() => parse(args)).toThrow(message);
  });
});

describe('the data port settings', () => {
  const secret = 'k'.repeat(32);

  it('has no data port unless --bind is given, and a window of 4', () => {
    expect(parse([])).toMatchObject({ dataPort: null, liveWindow: 4, clusterSecrets: undefined });
  });

  it('reads --bind, --advertise, --live-window and the TLS files (flags or environment)', () => {
    expect(
      parse(['--bind', '127.0.0.1:0', '--advertise', 'localhost:9000', '--live-window', '8'], {
        DATA_TLS_CERT_FILE: '/etc/node.crt',
        DATA_TLS_KEY_FILE: '/etc/node.key',
      }),
    ).toMatchObject({
      dataPort: {
        bind: { host: '127.0.0.1', port: 0 },
        advertise: { host: 'localhost', port: 9000 },
        tls: { certFile: '/etc/node.crt', keyFile: '/etc/node.key' },
      },
      liveWindow: 8,
    });
    expect(
      parse(['--bind', '[::1]:7000', '--data-tls-cert', 'c.pem', '--data-tls-key=k.pem']).dataPort,
    ).toEqual({
      bind: { host: '::1', port: 7000 },
      advertise: null,
      tls: { certFile: 'c.pem', keyFile: 'k.pem' },
    });
  });

  it('needs CLUSTER_SECRETS when the data port is reachable beyond loopback', () => {
    expect(() => parse(['--bind', '0.0.0.0:7000'])).toThrow(
      /CLUSTER_SECRETS is required .*--bind 0\.0\.0\.0:7000/,
    );
    expect(() => parse(['--bind', '127.0.0.1:7000', '--advertise', '10.0.0.5:7000'])).toThrow(
      /CLUSTER_SECRETS is required .*--advertise 10\.0\.0\.5:7000/,
    );
    expect(parse(['--bind', '0.0.0.0:7000'], { CLUSTER_SECRETS: secret })).toMatchObject({
      clusterSecrets: [secret],
    });
  });

  it.each([
    [['--bind', 'nohost'], /--bind must be HOST:PORT/],
    [['--bind', '127.0.0.1:65536'], /--bind must be HOST:PORT .*from 0 to 65535/],
    [['--bind', '127.0.0.1:0', '--advertise', 'a:0'], /--advertise must be HOST:PORT .*from 1 to 65535/],
    [['--advertise', 'a:1'], /need --bind/],
    [['--bind', '127.0.0.1:0', '--data-tls-cert', 'c.pem'], /go together/],
    [['--live-window', '0'], /--live-window must be an integer from 1 to 64/],
    [['--live-window', '65'], /--live-window must be an integer from 1 to 64/],
  ])('refuses %j with a clear message', (args, message) => {
    expect(() => parse(args)).toThrow(ConfigError);
    expect(() => parse(args)).toThrow(message);
  });

  it('refuses a CLUSTER_SECRETS too short to sign with', () => {
    expect(() => parse([], { CLUSTER_SECRETS: 'short' })).toThrow(/CLUSTER_SECRETS must be one or two/);
  });
});
