import type { JobView } from '../../../../libs/contracts/src/index.js';
import type { JobRecord } from '../../../../libs/cluster/src/index.js';

export function jobLinks(id: string) {
  return {
    self: `/v1/jobs/${id}`,
    events: `/v1/jobs/${id}/events`,
    output: `/v1/jobs/${id}/outputs/0`,
  };
}

export function outputUrl(id: string, index: number): string {
  return `/v1/jobs/${id}/outputs/${index}`;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toJobView(record: JobRecord): JobView {
  const { data } = record;
  return {
    id: data.jobId,
    status: record.status,
    codec: data.codec,
    pool: data.pool,
    frames: data.frames,
    width: data.width,
    height: data.height,
    format: data.format,
    progress: record.progress,
    node: record.node,
    attempts: record.attempts,
    createdAt: new Date(record.createdAt).toISOString(),
    startedAt: iso(record.startedAt),
    finishedAt: iso(record.finishedAt),
    error: record.error,
    // Listed once the job completed: a failed job exposes no partial work.
    outputs:
      record.status === 'completed'
        ? record.outputs.map((output) => ({ ...output, url: outputUrl(data.jobId, output.index) }))
        : [],
    ...(record.timings ? { timings: record.timings } : {}),
  };
}
