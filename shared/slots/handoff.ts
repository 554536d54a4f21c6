import type { Queue } from 'bullmq';
import type { ApplyResult } from '../events.ts';
import type { Keys } from '../keys.ts';
import type { Logger } from '../logger.ts';
import { FAX_JOB_NAME, type FaxJobData, faxJobId, faxJobOptions } from '../queue.ts';
import type { FaxRedis } from '../redis.ts';

/**
 * What follows a slot change in the queue: parked jobs woken for freed slots are promoted at once, and
 * a fax queued again gets its next job. Both are safe to repeat; what is lost here (a crash) the slot
 * keeper redoes (stuck wakes, outbox entries).
 */
export interface Handoff {
  wake(jobIds: readonly string[]): Promise<void>;
  requeue(faxId: string, attempt: number, delayMs: number): Promise<void>;
  /** Everything an applied event asks for. */
  after(result: ApplyResult): Promise<void>;
}

export interface HandoffDeps {
  readonly queue: Queue<FaxJobData>;
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly logger: Logger;
  readonly submitAttempts: number;
  /** The first wait of a job's exponential backoff (FAX_RETRY_DELAY_SCALE × 1 s). */
  readonly backoffMs?: number;
}

export function createHandoff(deps: HandoffDeps): Handoff {
  const { queue, redis, keys, logger } = deps;

  async function wake(jobIds: readonly string[]): Promise<void> {
    await Promise.all(
      jobIds.map((jobId) =>
        // A job that is no longer delayed (already promoted, or not parked yet: it checks for its own
        // wake after parking) is left alone.
        queue.backend.promote(jobId).catch((error: unknown) => {
          logger.debug({ jobId, err: error }, 'woken job not promoted');
        }),
      ),
    );
  }

  async function requeue(faxId: string, attempt: number, delayMs: number): Promise<void> {
    const jobId = faxJobId(faxId, attempt);
    await queue.add(
      FAX_JOB_NAME,
      { faxId, attempt },
      { ...faxJobOptions(jobId, deps.submitAttempts, deps.backoffMs), delay: delayMs },
    );
    await redis.zrem(keys.slots.outbox, faxId);
  }

  return {
    wake,
    requeue,
    async after(result) {
      if (result.lowered) {
        logger.warn(
          { scope: result.lowered.scope, limit: result.lowered.limit, faxId: result.faxId },
          'Telnyx refused a call over its channel limit: lowering our limit for a while (raise it at Telnyx or lower it here)',
        );
      }
      await wake(result.wake);
      if (result.requeuedAttempt !== undefined) {
        await requeue(result.faxId, result.requeuedAttempt, Math.max(0, (result.retryAt ?? 0) - Date.now()));
      }
    },
  };
}
