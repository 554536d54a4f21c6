import { Job, type Queue } from 'bullmq';
import type { Keys } from '../shared/keys.ts';
import type { Logger } from '../shared/logger.ts';
import { type FaxJobData, faxJobId } from '../shared/queue.ts';
import type { FaxRedis } from '../shared/redis.ts';
import type { Handoff } from '../shared/slots/handoff.ts';

export interface ReviveDeps {
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly queue: Queue<FaxJobData>;
  readonly handoff: Handoff;
  readonly logger: Logger;
}

/** Job states in which a job will still send its fax (or is sending it now). */
export const LIVE_JOB_STATES: ReadonlySet<string> = new Set([
  'active',
  'waiting',
  'delayed',
  'prioritized',
  'waiting-children',
]);

export type Revival = 'live' | 'moved-on' | 'retried' | 'requeued';

/**
 * A fax still queued at `attempt` must have a job that will send it: if its job failed (attempts
 * or stalls used up), completed or vanished, it gets one again. `moved-on`: the fax is no longer
 * queued at that attempt, nothing to do.
 */
export async function reviveJob(deps: ReviveDeps, faxId: string, attempt: number): Promise<Revival> {
  const [status, current] = await deps.redis.hmget(deps.keys.fax(faxId), 'status', 'attempt');
  if (status !== 'queued' || Number(current) !== attempt) return 'moved-on';
  const jobId = faxJobId(faxId, attempt);
  const state = await deps.queue.getJobState(jobId);
  if (LIVE_JOB_STATES.has(state)) return 'live';
  const log = deps.logger.child({ faxId, attempt, jobId, jobState: state });
  if (state === 'failed') {
    log.warn('the job of a queued fax had failed: retrying it');
    // Its BullMQ attempts start over (failed POSTs are counted in the record, not there).
    await (await Job.fromId(deps.queue, jobId))?.retry('failed', {
      resetAttemptsMade: true,
      resetAttemptsStarted: true,
    });
    return 'retried';
  }
  if (state === 'completed') await (await Job.fromId(deps.queue, jobId))?.remove();
  log.warn('a queued fax had no job that would send it: queueing it again');
  await deps.handoff.requeue(faxId, attempt, 0);
  return 'requeued';
}
