import type { JobSample } from './service.js';
import { mean, percentile } from './stats.js';

/**
 * Where a frame's time goes on the service path, from each job's stamps: the client's (request sent,
 * 202, `completed` event, outputs downloaded), the job record's (created once the frames are in Redis,
 * started and finished by the node) and the node's own `timings`. All are wall-clock milliseconds on
 * one host. Per frame = per job / frames per job.
 */
export interface StageDefinition {
  key: string;
  label: string;
  explain: string;
  ms: (sample: JobSample) => number;
}

export const SERVICE_STAGES = [
  {
    key: 'upload_store',
    label: 'upload+store',
    explain:
      'request start -> job created: HTTP body into the API, streamed into Redis as it arrives (overlapped)',
    ms: (s) => s.createdAt - s.postStartAt,
  },
  {
    key: 'accept',
    label: 'accept',
    explain: 'job created -> 202 at the client: job record, BullMQ enqueue, response',
    ms: (s) => s.acceptedAt - s.createdAt,
  },
  {
    key: 'queue_wait',
    label: 'queue',
    explain: 'job created -> node starts it; mostly the backlog the bench keeps to saturate the node',
    ms: (s) => s.timings?.queueWaitMs ?? s.startedAt - s.createdAt,
  },
  {
    key: 'fetch',
    label: 'fetch',
    explain: 'node waiting for frames from Redis (GETRANGE pieces; prefetch hides part of it)',
    ms: (s) => s.timings?.fetchMs ?? NaN,
  },
  {
    key: 'encode',
    label: 'encode',
    explain: 'in the encoder (sharp per frame; for video the ffmpeg run, which pulls the frames itself)',
    ms: (s) => s.timings?.encodeMs ?? NaN,
  },
  {
    key: 'store_output',
    label: 'store out',
    explain: 'output SET into Redis + job record + output event',
    ms: (s) => s.timings?.storeOutputMs ?? NaN,
  },
  {
    key: 'node_total',
    label: 'node',
    explain: 'node starts -> node finishes the job (fetch, encode and store overlap inside it)',
    ms: (s) => s.finishedAt - s.startedAt,
  },
  {
    key: 'notify',
    label: 'notify',
    explain: 'node finished -> `completed` SSE event at the client (pub/sub -> API -> SSE)',
    ms: (s) => s.completedAt - s.finishedAt,
  },
  {
    key: 'download',
    label: 'download',
    explain: '`completed` received -> all outputs downloaded (GET /v1/jobs/:id/outputs/:i)',
    ms: (s) => s.outputsAt - s.completedAt,
  },
  {
    key: 'end_to_end',
    label: 'total',
    explain: 'request start -> all outputs at the client (latency, not throughput)',
    ms: (s) => s.outputsAt - s.postStartAt,
  },
] as const satisfies readonly StageDefinition[];

export type StageKey = (typeof SERVICE_STAGES)[number]['key'];

export type StageBreakdown = Record<StageKey, number>;

/** Mean milliseconds per frame of each stage over the jobs of one case (NaN where not recorded). */
export function stageBreakdown(samples: JobSample[]): StageBreakdown {
  const perFrame = (stage: StageDefinition) =>
    mean(samples.map((sample) => stage.ms(sample) / sample.frames));
  return Object.fromEntries(SERVICE_STAGES.map((stage) => [stage.key, perFrame(stage)])) as StageBreakdown;
}

/** Per-job end-to-end latency percentiles (ms). */
export function jobLatency(samples: JobSample[]): { p50: number; p95: number } {
  const latencies = samples.map((sample) => sample.outputsAt - sample.postStartAt);
  return { p50: percentile(latencies, 50), p95: percentile(latencies, 95) };
}

/** How the stage figures were obtained, printed with them. */
export const STAGE_METHOD = [
  'Service stages come from each job: client stamps (request sent, 202, `completed` SSE event, outputs downloaded), ' +
    "the job record's createdAt/startedAt/finishedAt and the node's own `timings` (fetch, encode, store out), " +
    'all Date.now() on this one host, averaged over the jobs of a case and divided by frames per job.',
  'Stages overlap, so they do not add up: the API streams the body into Redis as it arrives (upload+store), ' +
    'the node prefetches the next frame while it encodes one, ffmpeg pulls frames while it encodes. ' +
    '`queue` is mostly the backlog the bench keeps (2 jobs per slot) to saturate the node, not overhead.',
  '`fetch` counts only the time the encoder waited for a frame; the full cost of reading a frame ' +
    'is the isolated `fetch` below. `CPU per frame` adds up every process, which on a CPU-bound box is what ' +
    'the ratio is made of: raw encoding gets both cores, the service shares them with the API, Redis and the client.',
];
