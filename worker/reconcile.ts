import type { Queue } from 'bullmq';
import { applyEvent, type EventSink } from '../shared/events.ts';
import type { Logger } from '../shared/logger.ts';
import { type FaxJobData, faxJobId } from '../shared/queue.ts';
import { redisNowMs } from '../shared/redis.ts';
import type { Handoff } from '../shared/slots/handoff.ts';
import { releaseForRevival, releaseSlots, renewLease } from '../shared/slots/slots.ts';
import { isTerminal, OWN_EVENTS, statusForTelnyxFax } from '../shared/status.ts';
import type { TelnyxClient, TelnyxFax } from '../shared/telnyx-client.ts';
import { findEarlierSubmission } from './find-submission.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { LIVE_JOB_STATES, reviveJob } from './revive-job.ts';

/** When a run of `attempt` began submitting, from the record's `submitting` mark (`attempt:ms`). */
function submittedSince(mark: string | null | undefined, attempt: number): number | undefined {
  const [markAttempt, ms] = (mark ?? '').split(':');
  return Number(markAttempt) === attempt && Number(ms) > 0 ? Number(ms) : undefined;
}

export interface ReconcileDeps extends EventSink {
  readonly telnyx: TelnyxClient;
  readonly limiter: RateLimiter;
  readonly handoff: Handoff;
  readonly queue: Queue<FaxJobData>;
  readonly logger: Logger;
  /** After a POST that may have reached Telnyx, wait this long before asking Telnyx about it. */
  readonly settleMs: number;
  /** FAX_STREAM_MAX_AGE_SECONDS in ms (the slot keeper trims the stream by age). */
  readonly streamMaxAgeMs?: number | undefined;
}

export type ReconcileOutcome =
  | 'renewed'
  | 'moved-on'
  | 'released'
  | 'finished'
  | 'found'
  | 'unknown-at-telnyx'
  | 'unreachable';

/**
 * A fax's slot lease ran out without news: find out what became of it. With a Telnyx id, Telnyx is
 * asked (`GET /v2/faxes/{id}`) and its answer is published as `fax.reconciled`, which frees the slots
 * if the fax has ended (or sends it again after a channel-limit failure) and renews the lease if the
 * call goes on. Without one, the slots were taken for a POST: kept while the fax's job is alive, freed
 * otherwise.
 */
export async function reconcileLease(deps: ReconcileDeps, faxId: string): Promise<ReconcileOutcome> {
  const [telnyxFaxId, attemptField, slots, submitting, requestJson, lookupAfter, claim] =
    await deps.redis.hmget(
      deps.keys.fax(faxId),
      'telnyx_fax_id',
      'attempt',
      'slots',
      'submitting',
      'request',
      'lookup_after',
      'submitting_run',
    );
  const attempt = Number(attemptField ?? 1);
  const log = deps.logger.child({ faxId, attempt, telnyxFaxId });
  if (!slots) {
    // Nothing held: the lease goes (unless a claim made since this read holds slots: then it stays).
    await renewLease(deps, faxId);
    return 'released';
  }
  if (!telnyxFaxId) {
    const state = await deps.queue.getJobState(faxJobId(faxId, attempt));
    if (LIVE_JOB_STATES.has(state)) {
      await renewLease(deps, faxId);
      return 'renewed';
    }
    // No job will POST it. Did a run that died create it at Telnyx?
    const since = submittedSince(submitting, attempt);
    const askAfter = Number(lookupAfter ?? 0) || (since ?? 0) + deps.settleMs;
    // Both times are Redis's: compare them with Redis's clock, not this machine's.
    const now = await redisNowMs(deps.redis);
    if (since !== undefined && now < askAfter) {
      // Its last POST may still be going on at Telnyx: ask later.
      await renewLease(deps, faxId);
      return 'renewed';
    }
    if (since !== undefined) {
      let earlier: TelnyxFax | undefined;
      try {
        const request = JSON.parse(requestJson ?? '{}') as { to: string };
        earlier = await findEarlierSubmission(deps, { faxId, attempt, to: request.to, since });
      } catch (error) {
        log.warn({ err: error }, 'cannot tell whether a dead job reached Telnyx; trying again later');
        return 'unreachable';
      }
      if (earlier) {
        await deps.handoff.after(
          await applyEvent(deps, {
            eventType: OWN_EVENTS.submitted,
            eventId: `found:${earlier.id}`,
            faxId,
            attempt,
            status: 'submitted',
            telnyxFaxId: earlier.id,
            occurredAt: new Date().toISOString(),
            direction: 'outbound',
            detail: 'found at Telnyx after its job died; not sent again',
            payload: earlier,
            dedupe: true,
          }),
        );
        await renewLease(deps, faxId);
        return 'found';
      }
    }
    // Freed only if no run claimed the fax meanwhile (one revived elsewhere may be POSTing it now).
    const released = await releaseForRevival(deps, faxId, attempt, claim ?? null);
    if (!released.freed) return 'moved-on';
    log.warn({ jobState: state }, 'slot held for a POST that no job will make: freed');
    await deps.handoff.wake(released.wake);
    await reviveJob(deps, faxId, attempt);
    return 'released';
  }

  await deps.limiter.take();
  let fax: Awaited<ReturnType<TelnyxClient['getFax']>>;
  try {
    fax = await deps.telnyx.getFax(telnyxFaxId);
  } catch (error) {
    log.warn({ err: error }, 'could not ask Telnyx about a fax whose lease ran out; trying again later');
    return 'unreachable';
  }
  const base = {
    eventType: OWN_EVENTS.reconciled,
    faxId,
    attempt,
    telnyxFaxId,
    direction: 'outbound' as const,
    dedupe: true,
  };
  if (!fax) {
    // Telnyx accepted it and has no record now (deleted there, or another account's key): nobody
    // can say whether it was sent, so it ends here — failed, final, never sent again by the default
    // policy — and its channel slots are freed with that final status.
    log.error(
      'Telnyx has no record of this fax: it ends as failed (unknown_at_telnyx); its outcome is unknown',
    );
    await deps.handoff.after(
      await applyEvent(deps, {
        ...base,
        eventId: `reconciled:${telnyxFaxId}:unknown`,
        status: 'failed',
        failureReason: 'unknown_at_telnyx',
        occurredAt: new Date().toISOString(),
        detail: `Telnyx has no fax ${telnyxFaxId}: whether it was sent is unknown`,
        payload: {},
      }),
    );
    await deps.handoff.wake(await releaseSlots(deps, faxId, attempt));
    return 'unknown-at-telnyx';
  }
  const status = statusForTelnyxFax(fax.status);
  const failureReason = typeof fax.failure_reason === 'string' ? fax.failure_reason : undefined;
  const result = await applyEvent(deps, {
    ...base,
    eventId: `reconciled:${telnyxFaxId}:${fax.status}`,
    status,
    occurredAt: typeof fax.updated_at === 'string' ? fax.updated_at : new Date().toISOString(),
    payload: fax,
    ...(failureReason ? { failureReason } : {}),
  });
  await deps.handoff.after(result);
  if (status !== undefined && isTerminal(status)) {
    log.info({ status, failureReason }, 'lease ran out on a fax that had ended: slots freed');
    return 'finished';
  }
  await renewLease(deps, faxId);
  log.info({ telnyxStatus: fax.status }, 'lease ran out on a fax still in progress: renewed');
  return 'renewed';
}
