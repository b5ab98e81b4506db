import type { JobsOptions, Queue } from 'bullmq';
import type { Pool } from '#contracts';

/** BullMQ forbids ':' in queue names, hence the dots. */
export const ENCODE_QUEUES: Record<Pool, string> = {
  cpu: 'encode.cpu',
  gpu: 'encode.gpu',
};

export const ENCODE_JOB_NAME = 'encode';

/** The queue of one node: the batches of the live streams pinned to it. */
export function nodeQueueName(nodeId: string): string {
  return `encode.node.${nodeId}`;
}

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

export function encodeJobOptions(jobId: string, retry: RetryPolicy, priority?: number): JobsOptions {
  return {
    jobId,
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.backoffMs },
    // Counts, not `true`: the dashboard keeps some history, and job data is only metadata anyway.
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 5000 },
    // A guard against frames creeping into job data (they must be Redis keys).
    sizeLimit: 16 * 1024,
    ...(priority ? { priority } : {}),
  };
}

/**
 * How many times a job may be found stalled (its node died or hung past its lock) before BullMQ fails
 * it: by the nodes' workers, and by the API when it stands in for the dead nodes of a queue.
 */
export const MAX_STALLED_COUNT = 2;

/**
 * Lock and stall-check timing derived from a node's failure-detection `timeout`: a killed node's job
 * is back in the queue within about twice the timeout, while a live node renews its lock 3 times a
 * timeout.
 */
export function lockSettingsFor(timeoutMs: number): {
  lockDuration: number;
  stalledInterval: number;
  lockRenewTime: number;
} {
  return {
    lockDuration: timeoutMs,
    lockRenewTime: Math.max(250, Math.floor(timeoutMs / 3)),
    stalledInterval: Math.max(500, Math.floor(timeoutMs / 2)),
  };
}

/**
 * Before a job is added to a queue it may have been on before (a live stream that moved away and back):
 * a finished copy kept there for the dashboard would make BullMQ ignore the add, so it goes first.
 */
export async function removeFinishedCopy(queue: Queue, jobId: string): Promise<void> {
  const earlier = await queue.getJob(jobId);
  const state = earlier ? await earlier.getState() : null;
  if (earlier && (state === 'completed' || state === 'failed')) await earlier.remove();
}
