import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Where credentials could show up in a log record. Request records are built by our own serializer
 * (which keeps no credential headers at all); these paths catch an object logged by hand.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'apiKey',
  'apiKeys',
  // A Redis error carries the command that failed: for AUTH and HELLO, the password.
  'err.command.args',
  'error.command.args',
];

/** True when the optional pino-pretty package can be loaded (it is not a dependency). */
export function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

export interface LoggerSettings {
  /** `service` field of every record: api, worker. */
  service: string;
  level: LogLevel;
  /** Human-readable output through pino-pretty, when it is installed. */
  pretty?: boolean;
  /** Extra fields on every record (a worker's node name). */
  base?: Record<string, unknown>;
}

/** JSON lines on stdout: `{"level":"info","time":"...","service":"api",...,"msg":"..."}`. */
export function createLogger(settings: LoggerSettings, destination?: DestinationStream): Logger {
  const pretty = settings.pretty === true && destination === undefined && prettyAvailable();
  const logger = pino(
    {
      level: settings.level,
      base: { service: settings.service, pid: process.pid, hostname: hostname(), ...settings.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      ...(pretty
        ? {
            transport: {
              target: 'pino-pretty',
              options: { translateTime: 'SYS:standard', singleLine: true },
            },
          }
        : {}),
    },
    destination,
  );
  if (settings.pretty && !pretty && destination === undefined) {
    logger.warn(
      'LOG_PRETTY=true but pino-pretty is not installed (npm i -D pino-pretty): logging JSON lines',
    );
  }
  return logger;
}
