import type { OutputInfo } from './jobs.js';

/** Events a node emits while it works on a job; the API relays them to SSE clients. */
export type JobEvent =
  | { type: 'active'; node: string; attempt: number }
  | { type: 'progress'; progress: number; framesDone: number }
  | ({ type: 'output' } & OutputInfo)
  | { type: 'completed'; outputs: number }
  | { type: 'failed'; error: string };

export type JobEventType = JobEvent['type'];

/** An event as stored in a job's event log: `id` is monotonic per job and is the SSE `id:`. */
export interface LoggedJobEvent {
  id: string;
  jobId: string;
  event: JobEvent;
}
