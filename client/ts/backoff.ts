/** How long to wait before reconnect attempts. */
export interface ReconnectPolicy {
  /** The longest wait before the first retry (the wait is random below it). Default 300 ms. */
  readonly initialDelayMs?: number;
  /** The longest wait between retries. Default 10 s. */
  readonly maxDelayMs?: number;
}

/**
 * The wait before reconnect attempt `attempt` (0 for the first): exponential backoff with
 * jitter, a random wait in the upper half of a window that doubles up to the maximum, so that
 * clients dropped together do not all come back at the same instant.
 */
export function reconnectDelay(attempt: number, policy: ReconnectPolicy = {}, random: () => number = Math.random): number {
  const initial = policy.initialDelayMs ?? 300;
  const max = policy.maxDelayMs ?? 10_000;
  const window = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return window * (0.5 + random() / 2);
}
