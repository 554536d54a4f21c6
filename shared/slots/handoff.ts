import { Queue } from 'bullmq';
import type { ApplyResult } from '../events.ts';
import { FAX_QUEUE, type Keys } from '../keys.ts';
import type { Logger } from '../logger.ts';
import { FAX_JOB_NAME, type FaxJobData, faxJobId, faxJobOptions } from '../queue.ts';
import type { FaxRedis } from '../redis.ts';
import type { Runtime } from '../runtime.ts';
import { publishDefaults } from './limits.ts';

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

/**
 * A worker's or webhook service's part in the slot machinery: the queue it promotes and queues jobs
 * on, and its handoff; its environment's default limits are published for every process first.
 */
export async function startHandoff(
  runtime: Runtime,
  redis: FaxRedis,
  logger: Logger,
): Promise<{ queue: Queue<FaxJobData>; handoff: Handoff }> {
  const { env } = runtime.config;
  const queue = new Queue<FaxJobData>(FAX_QUEUE, { connection: redis, prefix: runtime.keys.bullPrefix });
  queue.on('error', (error) => logger.warn({ err: error.message }, 'queue connection error'));
  const replaced = await publishDefaults({ redis, keys: runtime.keys, slots: runtime.slots });
  if (Object.keys(replaced).length > 0) {
    logger.warn(
      { replaced, now: runtime.slots.defaults },
      'this process changed the default channel limits every process uses (from its environment)',
    );
  }
  const handoff = createHandoff({
    queue,
    redis,
    keys: runtime.keys,
    logger,
    submitAttempts: env.FAX_SUBMIT_ATTEMPTS,
    backoffMs: 1000 * env.FAX_RETRY_DELAY_SCALE,
  });
  return { queue, handoff };
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
