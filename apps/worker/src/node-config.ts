import { availableParallelism, freemem, hostname, totalmem } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadSharedConfig, type SharedConfig } from '#cluster/shared-config.js';
import { clusterSecretsSetting, isLoopbackHost } from '#cluster/session-token.js';
import { CODECS, isCodec, type Codec, type Pool } from '#contracts';

export { ConfigError };

/** REDIS_URL (or --redis), QUEUE_PREFIX (or --queue-prefix), RETENTION_SECONDS, LOG_* as the API reads them. */
export interface NodeConfig extends SharedConfig {
  pool: Pool;
  concurrency: number;
  /** Failure-detection time for this node's work (lock duration) and heartbeat record lifetime. */
  timeoutMs: number;
  /** First Redis reconnect delay; doubles with jitter up to `reconnectMaxMs`. */
  reconnectDelayMs: number;
  reconnectMaxMs: number;
  drainTimeoutMs: number;
  /** A live stream's encoder context is closed after this long without a batch. */
  liveIdleTimeoutMs: number;
  /** The most live encoder contexts (ffmpeg processes) kept at once; published in the registry record. */
  liveMaxContexts: number;
  /** The data port for live sessions (`--bind`); null: none (live streams come through POST /frames only). */
  dataPort: DataPortConfig | null;
  /** Frames a live session may have in flight (`--live-window`). */
  liveWindow: number;
  /** CLUSTER_SECRETS (session tokens); undefined: shared through Redis, loopback only. */
  clusterSecrets: string[] | undefined;
  name: string;
  codecs: Codec[] | null;
  /** Test-only: lets a gpu-pool node serve gpu work with software encoders. */
  softwareGpu: boolean;
  /** Test only: every image codec is a synthetic encoder costing this many ms a frame (no CPU). */
  syntheticCostMs: number | null;
  help: boolean;
}

export interface HostPort {
  host: string;
  port: number;
}

export interface DataPortConfig {
  bind: HostPort;
  /** What others dial (`--advertise`); default: the bound address (the host name for a wildcard bind). */
  advertise: HostPort | null;
  /** PEM files: the data port speaks TLS (wss://) when both are given. */
  tls: { certFile: string; keyFile: string } | null;
}

export const DEFAULT_LIVE_WINDOW = 4;

export const WORKER_USAGE = `Usage: npm run worker -- [options]   (an encoder node; the counterpart of "xpra encoder")

  --pool cpu|gpu           queue pool this node serves (default cpu; gpu nodes also help the cpu pool)
  --concurrency N          jobs encoded at once, 1-64 (default: number of CPU cores)
  --timeout S              failure-detection time in seconds, 1-600 (default 10): a killed node's jobs
                           are re-queued within about 2x this, and its registry record expires after it
  --reconnect-delay S      first Redis reconnect delay in seconds, 0.05-60 (default 0.5); then
                           exponential backoff with jitter, capped at 30 s
  --drain-timeout S        on SIGTERM/SIGINT, time to finish active jobs before leaving them to other
                           nodes (default 30)
  --live-idle-timeout S    close a live stream's encoder (its ffmpeg) after S seconds without frames
                           (default 30); the stream's next batch starts a new one, with a keyframe
  --live-max-contexts N    most live encoder contexts (ffmpeg processes) kept at once, 1-1024; the API
                           places no new live stream here past N (default: 4 per slot, at most what
                           half the free memory (or cgroup limit) holds at 128 MiB each)
  --bind HOST:PORT         open a data port for live sessions there (port 0: any free port); clients
                           send frames straight to it (see README, "Data port"); default: none
  --advertise HOST:PORT    the data port's address as others dial it (default: the bound one)
  --live-window N          frames a live session may have in flight, 1-64 (default 4)
  --data-tls-cert FILE     PEM certificate for the data port (wss://); with --data-tls-key
  --data-tls-key FILE      PEM private key for the data port
  --name NAME              node name shown in /v1/nodes (default: host-pid)
  --codecs LIST            comma list restricting the codecs this node offers (default: all it can encode)
  --redis URL              Redis URL (default: $REDIS_URL or redis://127.0.0.1:6379)
  --queue-prefix NAME      key prefix shared with the API (default: $QUEUE_PREFIX or "encoder")
  --synthetic-cost-ms N    test only (benchmarks of the cluster itself): every image codec is a fake
                           encoder that waits N ms a frame (1-10000) without using the CPU and returns
                           a 1x1 image; never on a node that serves real work
  --help                   this text

Environment: CLUSTER_SECRETS (the session-token secret(s) shared with the API: required when the data
port is bound or advertised beyond loopback), DATA_TLS_CERT_FILE, DATA_TLS_KEY_FILE, REDIS_URL, QUEUE_PREFIX, RETENTION_SECONDS (how long outputs, job records and event logs
are kept, 10-604800 s, default 3600: give the node the API's value), LOG_LEVEL, LOG_PRETTY, FFMPEG_PATH,
FFPROBE_PATH.`;

/** Live contexts per job slot by default: a live stream at desktop frame rates uses part of a core. */
export const LIVE_CONTEXTS_PER_SLOT = 4;

/**
 * Memory budgeted per live context: measured RSS of one live ffmpeg, 55 MB (320x180) to 118 MB
 * (1080p) for libx264 zerolatency, 70 to 229 MB for libvpx-vp9 realtime.
 */
export const LIVE_CONTEXT_BYTES = 128 * 1024 * 1024;

/** Free memory, bounded by the process's memory limit (a container's cgroup) when it has one. */
export function availableMemory(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  return limit > 0 && limit < totalmem() ? Math.min(freemem(), limit) : freemem();
}

/** The default --live-max-contexts: 4 per slot, at most what half the free memory holds, at least 1. */
export function defaultLiveMaxContexts(concurrency: number, freeMemoryBytes: number): number {
  const byMemory = Math.floor(freeMemoryBytes / 2 / LIVE_CONTEXT_BYTES);
  return Math.max(1, Math.min(LIVE_CONTEXTS_PER_SLOT * concurrency, byMemory));
}

function numberFlag(name: string, raw: string, min: number, max: number, integer: boolean): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new ConfigError(
      `--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

const STRING_FLAGS = [
  'pool',
  'concurrency',
  'timeout',
  'reconnect-delay',
  'drain-timeout',
  'live-idle-timeout',
  'live-max-contexts',
  'name',
  'codecs',
  'redis',
  'queue-prefix',
  'synthetic-cost-ms',
  'bind',
  'advertise',
  'live-window',
  'data-tls-cert',
  'data-tls-key',
] as const;

const FLAGS: NonNullable<ParseArgsConfig['options']> = {
  ...Object.fromEntries(STRING_FLAGS.map((name) => [name, { type: 'string' as const }])),
  help: { type: 'boolean' },
  'software-gpu': { type: 'boolean' },
};

/** `HOST:PORT` or `[IPv6]:PORT`; `minPort` 0 lets the system pick (a bind). */
export function parseHostPort(flag: string, raw: string, minPort: number): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < minPort || port > 65535) {
    throw new ConfigError(
      `--${flag} must be HOST:PORT (IPv6 as [ADDR]:PORT) with a port from ${minPort} to 65535, got "${raw}"`,
    );
  }
  return { host: match[1] ?? match[2], port };
}

/** Whether others than this machine may reach the data port (then tokens need CLUSTER_SECRETS). */
export function isBeyondLoopback(port: DataPortConfig): boolean {
  return !isLoopbackHost(port.bind.host) || (port.advertise !== null && !isLoopbackHost(port.advertise.host));
}

function formatHostPort({ host, port }: HostPort): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function dataPortConfig(flags: Map<string, string>, env: NodeJS.ProcessEnv): DataPortConfig | null {
  const certFile = flags.get('data-tls-cert') ?? (env.DATA_TLS_CERT_FILE || undefined);
  const keyFile = flags.get('data-tls-key') ?? (env.DATA_TLS_KEY_FILE || undefined);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(
      '--data-tls-cert (DATA_TLS_CERT_FILE) and --data-tls-key (DATA_TLS_KEY_FILE) go together: give both for a TLS data port, or neither',
    );
  }
  const bind = flags.get('bind');
  const advertise = flags.get('advertise');
  if (bind === undefined) {
    if (advertise !== undefined || certFile !== undefined)
      throw new ConfigError(
        '--advertise and the data port TLS settings need --bind HOST:PORT (the data port)',
      );
    return null;
  }
  return {
    bind: parseHostPort('bind', bind, 0),
    advertise: advertise === undefined ? null : parseHostPort('advertise', advertise, 1),
    tls: certFile && keyFile ? { certFile, keyFile } : null,
  };
}

/**
 * Flag name -> value ('true' for a boolean flag). Not strict, so that each mistake gets this
 * command's own message: a flag's value is never taken from the next flag (`--timeout --pool gpu`).
 */
function readFlags(argv: string[]): Map<string, string> {
  const { tokens } = parseArgs({
    args: argv,
    options: FLAGS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const flags = new Map<string, string>();
  for (const token of tokens) {
    if (token.kind === 'positional')
      throw new ConfigError(`unexpected argument "${token.value}" (see --help)`);
    if (token.kind === 'option-terminator') throw new ConfigError(`unexpected argument "--" (see --help)`);
    if (!Object.hasOwn(FLAGS, token.name)) {
      throw new ConfigError(`unknown option ${token.rawName} (see --help)`);
    }
    if (FLAGS[token.name].type === 'boolean') {
      flags.set(token.name, token.value ?? 'true');
      continue;
    }
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
      throw new ConfigError(`--${token.name} needs a value`);
    }
    flags.set(token.name, token.value);
  }
  return flags;
}

export function parseNodeArgs(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaults: { cores: number; pid: number; host: string; freeMemory?: number } = {
    cores: availableParallelism(),
    pid: process.pid,
    host: hostname(),
  },
): NodeConfig {
  const flags = readFlags(argv);

  const pool = flags.get('pool') ?? 'cpu';
  if (pool !== 'cpu' && pool !== 'gpu') throw new ConfigError(`--pool must be cpu or gpu, got "${pool}"`);

  let codecs: Codec[] | null = null;
  const codecList = flags.get('codecs');
  if (codecList !== undefined) {
    codecs = codecList
      .split(',')
      .map((codec) => codec.trim().toLowerCase())
      .filter(Boolean) as Codec[];
    const unknown = codecs.filter((codec) => !isCodec(codec));
    if (unknown.length > 0 || codecs.length === 0) {
      throw new ConfigError(
        `--codecs takes a comma list of ${CODECS.join(', ')}; unknown: ${unknown.join(', ') || '(empty)'}`,
      );
    }
  }

  const shared = loadSharedConfig(env, { redis: flags.get('redis'), queuePrefix: flags.get('queue-prefix') });
  const name = flags.get('name') ?? `${defaults.host}-${defaults.pid}`;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name))
    throw new ConfigError(`--name must be 1-64 letters, digits, '_', '.', ':' or '-'`);

  const syntheticCost = flags.get('synthetic-cost-ms');
  const concurrency = numberFlag(
    'concurrency',
    flags.get('concurrency') ?? String(defaults.cores),
    1,
    64,
    true,
  );
  const liveMaxContexts = flags.get('live-max-contexts');
  const dataPort = dataPortConfig(flags, env);
  const clusterSecrets = clusterSecretsSetting(env);
  if (dataPort && !clusterSecrets && isBeyondLoopback(dataPort)) {
    throw new ConfigError(
      `CLUSTER_SECRETS is required when the data port is bound or advertised beyond loopback (--bind ${formatHostPort(dataPort.bind)}${dataPort.advertise ? `, --advertise ${formatHostPort(dataPort.advertise)}` : ''}): set the same secret (openssl rand -base64 32) on the API and every node`,
    );
  }
  return {
    ...shared,
    pool,
    concurrency,
    timeoutMs: numberFlag('timeout', flags.get('timeout') ?? '10', 1, 600, false) * 1000,
    reconnectDelayMs:
      numberFlag('reconnect-delay', flags.get('reconnect-delay') ?? '0.5', 0.05, 60, false) * 1000,
    reconnectMaxMs: 30_000,
    drainTimeoutMs: numberFlag('drain-timeout', flags.get('drain-timeout') ?? '30', 0, 3600, false) * 1000,
    liveIdleTimeoutMs:
      numberFlag('live-idle-timeout', flags.get('live-idle-timeout') ?? '30', 1, 86_400, false) * 1000,
    liveMaxContexts:
      liveMaxContexts === undefined
        ? defaultLiveMaxContexts(concurrency, defaults.freeMemory ?? availableMemory())
        : numberFlag('live-max-contexts', liveMaxContexts, 1, 1024, true),
    dataPort,
    liveWindow: numberFlag(
      'live-window',
      flags.get('live-window') ?? String(DEFAULT_LIVE_WINDOW),
      1,
      64,
      true,
    ),
    clusterSecrets,
    name,
    codecs,
    softwareGpu: flags.get('software-gpu') === 'true',
    syntheticCostMs:
      syntheticCost === undefined ? null : numberFlag('synthetic-cost-ms', syntheticCost, 1, 10_000, true),
    help: flags.get('help') === 'true',
  };
}
