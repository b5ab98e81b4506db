/** Exponential backoff with full jitter: attempt 1 waits about `initialMs`, doubling up to `maxMs`. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt - 1));
  // Half fixed, half jitter: never zero (no reconnect storms), never above the cap.
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}
