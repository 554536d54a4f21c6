import { setTimeout as sleep } from 'node:timers/promises';
import type { Keys } from '../shared/keys.ts';
import type { FaxRedis } from '../shared/redis.ts';

/**
 * The Telnyx API rate limit, held in Redis so every worker process shares it
 * (shared/scripts/rate-limit.lua): requests are spaced evenly at `requestsPerSecond`, and a 429
 * pauses all of them until Telnyx's reset.
 */
export interface RateLimiter {
  /** Ms between requests (0: no rate limit, only 429 pauses). */
  readonly intervalMs: number;
  /** Waits for this process's turn to call Telnyx. */
  take(): Promise<void>;
  /** Pauses every worker's calls for `ms`. */
  pause(ms: number): Promise<void>;
  /** Waits until a pause set by any worker (after a 429) is over. */
  waitOutPause(): Promise<void>;
}

export function createRateLimiter(
  redis: FaxRedis,
  keys: Keys,
  requestsPerSecond: number | undefined,
): RateLimiter {
  const intervalMs = requestsPerSecond === undefined ? 0 : 1000 / requestsPerSecond;
  return {
    intervalMs,
    async take() {
      const waitMs = Number(await redis.rateLimit(keys.rate.next, keys.rate.pause, 'take', intervalMs));
      if (waitMs > 0) await sleep(waitMs);
    },
    async pause(ms) {
      await redis.rateLimit(keys.rate.next, keys.rate.pause, 'pause', Math.max(1, Math.round(ms)));
    },
    async waitOutPause() {
      const waitMs = Number(await redis.rateLimit(keys.rate.next, keys.rate.pause, 'take', 0));
      if (waitMs > 0) await sleep(waitMs);
    },
  };
}
