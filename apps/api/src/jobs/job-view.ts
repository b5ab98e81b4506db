import { codedSize, type Codec, type JobView, type OddSizePolicy } from '#contracts';
import type { JobRecord } from '#cluster';

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

/**
 * `outputWidth`/`outputHeight` when the output's pictures are not width x height (H.264/HEVC with
 * `oddSize=pad` at an odd size), else nothing: views stay as they were for every other job.
 */
export function paddedOutputSize(
  codec: Codec,
  width: number,
  height: number,
  oddSize: OddSizePolicy | undefined,
): { outputWidth?: number; outputHeight?: number } {
  const coded = codedSize(codec, width, height, oddSize);
  if (coded.width === width && coded.height === height) return {};
  return { outputWidth: coded.width, outputHeight: coded.height };
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
    ...paddedOutputSize(data.codec, data.width, data.height, data.settings.oddSize),
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
