import { setTimeout as sleep } from 'node:timers/promises';
import { applyEvent, newEventId } from '../shared/events.ts';
import { attemptOfJob } from '../shared/queue.ts';
import { expiresAt } from '../shared/retry-policy.ts';
import { redisNowMs } from '../shared/redis.ts';
import { OWN_EVENTS } from '../shared/status.ts';
import { leaveLine, slotTick } from '../shared/slots/slots.ts';
import { type ReconcileDeps, reconcileLease } from './reconcile.ts';
import { reviveJob } from './revive-job.ts';
import { enforceRetention } from './stream-retention.ts';

export interface SlotKeeperOptions {
  /** Between rounds. */
  readonly intervalMs: number;
  /** At most this many leases, wakes and unqueued faxes per round. */
  readonly batch: number;
  /** How often (across all workers) every waiting scope is checked for free slots. */
  readonly sweepMs: number;
  /** How often (across all workers) failed jobs are checked for faxes still queued. */
  readonly failedScanMs?: number;
  /** Failed jobs looked at per scan: the newest this many, and as many older ones in turn. */
  readonly failedScanBatch?: number;
}

export const SLOT_KEEPER_DEFAULTS: SlotKeeperOptions = {
  intervalMs: 1000,
  batch: 50,
  sweepMs: 5000,
  failedScanMs: 60_000,
  failedScanBatch: 200,
};

export interface SlotKeeper {
  /** One round now (tests). */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Each worker process runs one: a round a second of what no event triggers — leases that ran out
 * (reconciled with Telnyx), wakes that were lost, next attempts never queued — claimed in Redis so
 * that workers share the work instead of repeating it. The normal path (a release promoting the next
 * fax) never waits for it.
 */
export function startSlotKeeper(
  deps: ReconcileDeps,
  options: SlotKeeperOptions = SLOT_KEEPER_DEFAULTS,
): SlotKeeper {
  const controller = new AbortController();

  /** A fax woken for a slot long ago has not taken it: wake its job again, or give it a new one. */
  async function recoverStuck(faxId: string, jobId: string): Promise<void> {
    if ((await deps.queue.getJobState(jobId)) === 'delayed') {
      await deps.handoff.wake([jobId]);
      return;
    }
    const revival = await reviveJob(deps, faxId, attemptOfJob(faxId, jobId));
    if (revival === 'moved-on') {
      deps.logger.warn({ faxId, jobId }, 'a waiting fax had moved on: taking it out of the line');
      await deps.handoff.wake(await leaveLine(deps, faxId));
    }
  }

  async function runOnce(): Promise<void> {
    const tick = await slotTick(deps, options.batch, options.sweepMs);
    await deps.handoff.wake(tick.wake);
    for (const { faxId, jobId } of tick.stuck) await recoverStuck(faxId, jobId);
    for (const { faxId, attempt, dueAt } of tick.unqueued) {
      deps.logger.warn({ faxId, attempt }, 'queueing an attempt whose job was never added');
      await deps.handoff.requeue(faxId, attempt, Math.max(0, dueAt - Date.now()));
    }
    for (const faxId of tick.expired) await reconcileLease(deps, faxId);
    // Once a minute, by whichever worker claims it: trim the stream by age, warn about lagging groups.
    if (await deps.redis.set(deps.keys.keeper.retention, '1', 'PX', 60_000, 'NX')) {
      await enforceRetention({ ...deps, maxAgeMs: deps.streamMaxAgeMs });
    }
    const scanMs = options.failedScanMs ?? SLOT_KEEPER_DEFAULTS.failedScanMs ?? 60_000;
    if (await deps.redis.set(deps.keys.keeper.failedScan, '1', 'PX', scanMs, 'NX')) {
      await reviveFailed();
      await expireWaiting();
    }
  }

  /**
   * A job that used up its BullMQ attempts on errors other than failed POSTs (Redis away mid-run, a
   * bug) leaves its fax queued with nothing to send it: give it its job again. Faxes that have moved
   * on are left alone; a fax that keeps failing is retried at most once per scan.
   */
  async function reviveFailed(): Promise<void> {
    // The newest every scan (a fresh failure goes back at once), and one page of older ones in turn,
    // so that every failed job is looked at in time however many faxes that moved on failed since.
    const batch = options.failedScanBatch ?? SLOT_KEEPER_DEFAULTS.failedScanBatch ?? 200;
    const from = Math.max(batch, Number(await deps.redis.get(deps.keys.keeper.failedScanFrom)) || 0);
    const older = await deps.queue.getFailed(from, from + batch - 1);
    await deps.redis.set(deps.keys.keeper.failedScanFrom, older.length < batch ? batch : from + batch);
    for (const job of [...(await deps.queue.getFailed(0, batch - 1)), ...older]) {
      const { faxId } = job.data;
      if (!faxId || !job.id) continue;
      try {
        const revival = await reviveJob(deps, faxId, attemptOfJob(faxId, job.id));
        if (revival === 'retried') {
          deps.logger.warn(
            { faxId, jobId: job.id, reason: job.failedReason },
            'revived a failed job of a queued fax',
          );
        }
      } catch (error) {
        // One job that changed state meanwhile does not end the scan.
        deps.logger.warn({ faxId, jobId: job.id, err: error }, 'could not revive a failed job; next scan');
      }
    }
  }

  /**
   * A fax waiting in a line past its time-to-live ends `expired` now, not when a slot finally frees
   * for it (under a limit of 0, never). Only while it is still waiting, unclaimed: a fax claimed
   * meanwhile is its worker's to judge.
   */
  async function expireWaiting(): Promise<void> {
    const now = await redisNowMs(deps.redis);
    for (const scope of await deps.redis.smembers(deps.keys.slots.waiting)) {
      const waiting = await deps.redis.zrange(deps.keys.slots.parked(scope), '0', '-1');
      for (let i = 0; i < waiting.length; i += 500) {
        const faxIds = waiting.slice(i, i + 500);
        const read = deps.redis.pipeline();
        for (const faxId of faxIds)
          read.hmget(deps.keys.fax(faxId), 'created_at', 'due_at', 'request', 'job_id');
        const records = (await read.exec()) ?? [];
        for (const [index, faxId] of faxIds.entries()) {
          const [createdAt, dueAt, request, jobId] = (records[index]?.[1] ?? []) as (string | null)[];
          if (!request) continue;
          const ttl = (JSON.parse(request) as { ttl_seconds?: number }).ttl_seconds;
          // From when it was due, as the claim counts (a scheduled fax from its send_at).
          const expires = expiresAt(deps.retryPolicy, Number(dueAt) || Number(createdAt), ttl);
          if (now <= expires) continue;
          const applied = await applyEvent(deps, {
            eventId: newEventId(),
            eventType: OWN_EVENTS.failed,
            faxId,
            status: 'failed',
            failureReason: 'expired',
            detail: `not sent: its time-to-live ran out at ${new Date(expires).toISOString()} while it waited for a channel`,
            occurredAt: new Date().toISOString(),
            direction: 'outbound',
            payload: {},
            dedupe: false,
            onlyIfNotSubmitting: true,
          });
          await deps.handoff.after(applied);
          if (applied.outcome !== 'refused' && jobId) await deps.queue.remove(jobId).catch(() => 0);
        }
      }
    }
  }

  const loop = (async () => {
    while (!controller.signal.aborted) {
      await runOnce().catch((error: unknown) => {
        // A round cut short by a shutdown is left to another worker (its claims run out).
        if (!controller.signal.aborted) deps.logger.warn({ err: error }, 'slot keeper round failed');
      });
      await sleep(options.intervalMs, undefined, { signal: controller.signal }).catch(() => undefined);
    }
  })();

  return {
    runOnce,
    async close() {
      controller.abort();
      await loop;
    },
  };
}
