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
  /** Waits for this process's turn to call Telnyx; rejects with an `AbortError` once stopping. */
  take(): Promise<void>;
  /** Pauses every worker's calls for `ms`. */
  pause(ms: number): Promise<void>;
  /** Waits until a pause set by any worker (after a 429) is over; rejects once stopping. */
  waitOutPause(): Promise<void>;
}

/**
 * `stopping` (the process is shutting down) ends every wait at once with an `AbortError`: a request
 * that was only waiting for its turn is not made.
 */
export function createRateLimiter(
  redis: FaxRedis,
  keys: Keys,
  requestsPerSecond: number | undefined,
  stopping?: AbortSignal,
): RateLimiter {
  const intervalMs = requestsPerSecond === undefined ? 0 : 1000 / requestsPerSecond;
  const wait = async (ms: number) => {
    if (ms > 0) await sleep(ms, undefined, stopping ? { signal: stopping } : {});
  };
  return {
    intervalMs,
    async take() {
      stopping?.throwIfAborted();
      await wait(Number(await redis.rateLimit(keys.rate.next, keys.rate.pause, 'take', intervalMs)));
    },
    async pause(ms) {
      await redis.rateLimit(keys.rate.next, keys.rate.pause, 'pause', Math.max(1, Math.round(ms)));
    },
    async waitOutPause() {
      stopping?.throwIfAborted();
      await wait(Number(await redis.rateLimit(keys.rate.next, keys.rate.pause, 'take', 0)));
    },
  };
}
