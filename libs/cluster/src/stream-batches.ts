import { isVideoCodec, type EncodeJobData, type OutputInfo, type StreamEvent } from '#contracts';
import type { CommitResult } from './stream-store.js';
import type { JobRecord } from './job-store.js';

export interface StreamBatchStores {
  jobRecord(jobId: string): Promise<JobRecord | null>;
  commit(streamId: string, seq: number, events: StreamEvent[]): Promise<CommitResult>;
}

/** The stream events of a finished batch-mode job: its outputs, then `batch` (or `batch-failed`). */
export function batchEvents(
  data: EncodeJobData,
  record: Pick<JobRecord, 'status' | 'outputs' | 'node' | 'error'>,
): StreamEvent[] {
  const ref = data.stream!;
  const base = { seq: ref.seq, jobId: data.jobId };
  if (record.status === 'failed') {
    return [{ type: 'batch-failed', ...base, frames: data.frames, error: record.error ?? 'failed' }];
  }
  // Image codecs give one output per frame; a video batch gives one segment.
  const perFrame = !isVideoCodec(data.codec);
  const outputs = record.outputs.map((output: OutputInfo): StreamEvent => ({
    type: 'output',
    ...base,
    index: output.index,
    ...(perFrame ? { frame: ref.firstFrame + output.index } : {}),
    contentType: output.contentType,
    bytes: output.bytes,
  }));
  return [
    ...outputs,
    { type: 'batch', ...base, frames: data.frames, outputs: outputs.length, node: record.node },
  ];
}

/**
 * Hands a finished batch-mode job to its stream's reorder buffer, from the job's record: the record is
 * the truth whichever run finished it, so a job that was finished by an earlier run (and is skipped
 * now) is still committed, and committing twice is harmless.
 */
export async function commitStreamBatch(
  stores: StreamBatchStores,
  data: EncodeJobData,
): Promise<CommitResult | null> {
  if (!data.stream) return null;
  const record = await stores.jobRecord(data.jobId);
  if (!record || (record.status !== 'completed' && record.status !== 'failed')) return null;
  return stores.commit(data.stream.streamId, data.stream.seq, batchEvents(data, record));
}
