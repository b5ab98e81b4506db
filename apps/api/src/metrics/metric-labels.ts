import type { JobRecord } from '#cluster';

/** Every metric this service exports starts with this. */
export const METRIC_PREFIX = 'encoder_';

export function metricName(name: string): string {
  const full = `${METRIC_PREFIX}${name}`;
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(full)) throw new Error(`invalid metric name ${full}`);
  return full;
}

/** The BullMQ states exported as `encoder_queue_jobs{state}` (Queue.getJobCounts). */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Paths served by Express middleware rather than Nest routes (Bull Board's router, the Swagger UI and
 * document): one label each, whatever the sub-path.
 */
const MOUNTED = ['/admin/queues', '/docs', '/docs-json', '/docs-yaml'];

export function methodLabel(method: string | undefined): string {
  const upper = (method ?? '').toUpperCase();
  return METHODS.has(upper) ? upper : 'OTHER';
}

/**
 * A bounded `route` label: the matched route pattern (`/v1/jobs/:id`), never the raw URL (ids and
 * query strings would make a series per request). Unmatched paths (404s, scanners) share one label.
 */
export function routeLabel(request: {
  originalUrl?: string;
  baseUrl?: string;
  route?: { path?: unknown };
}): string {
  // originalUrl: Express rewrites `url` (and `path`) inside mounted middleware and may not restore it
  // when that middleware ends the response.
  const url = request.originalUrl ?? '';
  const end = url.search(/[?#]/);
  const path = (end < 0 ? url : url.slice(0, end)).toLowerCase();
  for (const mount of MOUNTED) {
    if (path === mount || path.startsWith(`${mount}/`)) return mount;
  }
  const pattern = request.route?.path;
  if (typeof pattern === 'string' && pattern.length > 0) return `${request.baseUrl ?? ''}${pattern}`;
  return 'unmatched';
}

/** What a finished job contributes to the job metrics. */
export interface JobSample {
  labels: { codec: string; pool: string };
  status: 'completed' | 'failed';
  /** The node's time on its last attempt: startedAt -> finishedAt. */
  processingSeconds: number | null;
  /** Time inside the encoder (sharp, ffmpeg), when the node recorded timings. */
  encodeSeconds: number | null;
  /** Creation to a node starting it, when the node recorded timings. */
  queueWaitSeconds: number | null;
  /** Submission to result: createdAt -> finishedAt. */
  latencySeconds: number | null;
  frames: number;
  inputBytes: number;
  outputs: number;
  outputBytes: number;
}

const seconds = (from: number | null, to: number | null) =>
  from !== null && to !== null && to >= from ? (to - from) / 1000 : null;

const msToSeconds = (ms: number | undefined) =>
  typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms / 1000 : null;

/** Null for a job that has not finished (nothing to count yet). */
export function jobSample(record: JobRecord): JobSample | null {
  if (record.status !== 'completed' && record.status !== 'failed') return null;
  return {
    labels: { codec: record.data.codec, pool: record.data.pool },
    status: record.status,
    processingSeconds: seconds(record.startedAt, record.finishedAt),
    encodeSeconds: msToSeconds(record.timings?.encodeMs),
    queueWaitSeconds: msToSeconds(record.timings?.queueWaitMs),
    latencySeconds: seconds(record.createdAt, record.finishedAt),
    frames: record.data.frames,
    inputBytes: record.data.input.storedBytes,
    outputs: record.outputs.length,
    outputBytes: record.outputs.reduce((sum, output) => sum + output.bytes, 0),
  };
}
