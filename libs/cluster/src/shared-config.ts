import { LOG_LEVELS, isLogLevel, type LogLevel } from '#logging';
import { parseRedisTarget } from './redis-target.js';

/**
 * The settings that the API and every encoder node both read, parsed and checked here once, so that
 * both sides accept the same values and name a wrong one the same way (docs/configuration.md).
 */
export interface SharedConfig {
  redisUrl: string;
  /** Key prefix of every queue and record: the API and the nodes must agree on it. */
  queuePrefix: string;
  /** How long frames, outputs, job and stream records and event logs are kept. */
  retentionSeconds: number;
  logLevel: LogLevel;
  /** Human-readable logs through pino-pretty, when it is installed; JSON lines otherwise. */
  logPretty: boolean;
}

/** A setting with a wrong value: the process stops, printing the message (which names the setting). */
export class ConfigError extends Error {}

export type Env = Record<string, string | undefined>;

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_QUEUE_PREFIX = 'encoder';
export const DEFAULT_RETENTION_SECONDS = 3600;

/** An environment variable's value; an empty one counts as unset. */
function read(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

export function integerSetting(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case. */
export function booleanSetting(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/**
 * A command-line flag that stands in for an environment variable (a node's `--redis` for
 * `REDIS_URL`): given, it wins, and an error names the flag.
 */
interface Source {
  name: string;
  raw: string | undefined;
}

function choose(env: Env, envName: string, flag?: Source): Source {
  return flag?.raw !== undefined ? flag : { name: envName, raw: read(env, envName) };
}

function redisUrl({ name, raw }: Source): string {
  const url = raw ?? DEFAULT_REDIS_URL;
  try {
    parseRedisTarget(url);
  } catch (error) {
    throw new ConfigError(`${name}: ${(error as Error).message}`);
  }
  return url;
}

function queuePrefix({ name, raw }: Source): string {
  const prefix = raw ?? DEFAULT_QUEUE_PREFIX;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) {
    throw new ConfigError(`${name} must be 1-64 letters, digits, '_', '.' or '-', got "${prefix}"`);
  }
  return prefix;
}

function logLevelSetting(env: Env): LogLevel {
  const raw = (read(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!isLogLevel(raw)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }
  return raw;
}

/**
 * Reads the shared settings from the environment; `flags` are a node's `--redis` and `--queue-prefix`
 * (undefined when not given), which take precedence over REDIS_URL and QUEUE_PREFIX.
 */
export function loadSharedConfig(
  env: Env,
  flags: { redis?: string; queuePrefix?: string } = {},
): SharedConfig {
  return {
    redisUrl: redisUrl(choose(env, 'REDIS_URL', { name: '--redis', raw: flags.redis })),
    queuePrefix: queuePrefix(choose(env, 'QUEUE_PREFIX', { name: '--queue-prefix', raw: flags.queuePrefix })),
    retentionSeconds: integerSetting(env, 'RETENTION_SECONDS', DEFAULT_RETENTION_SECONDS, 10, 7 * 24 * 3600),
    logLevel: logLevelSetting(env),
    logPretty: booleanSetting(env, 'LOG_PRETTY', false),
  };
}
