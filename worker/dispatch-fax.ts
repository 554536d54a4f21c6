import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import { encodeClientState } from '../shared/client-state.ts';
import { type ApplyResult, applyEvent, type EventSink, type FaxEvent, newEventId } from '../shared/events.ts';
import type { Logger } from '../shared/logger.ts';
import type { DispatchResult, FaxMetrics, PostOutcome } from '../shared/metrics/fax-metrics.ts';
import type { FaxJobData } from '../shared/queue.ts';
import { telnyxFields } from '../shared/fax-request.ts';
import { expiresAt } from '../shared/retry-policy.ts';
import { nextOpening } from '../shared/sending-window.ts';
import type { Handoff } from '../shared/slots/handoff.ts';
import {
  acquireSlots,
  failedPost,
  handBack,
  holdUntil,
  isWoken,
  releaseSlots,
  stampPost,
} from '../shared/slots/slots.ts';
import { OWN_EVENTS } from '../shared/status.ts';
import type { SubmitOutcome, TelnyxClient, TelnyxFax } from '../shared/telnyx-client.ts';
import { findEarlierSubmission } from './find-submission.ts';
import type { RateLimiter } from './rate-limiter.ts';

export interface DispatchDeps extends EventSink {
  readonly telnyx: TelnyxClient;
  readonly logger: Logger;
  readonly limiter: RateLimiter;
  readonly handoff: Handoff;
  /** POSTs of one attempt that may fail (429s not counted) before the fax fails. */
  readonly submitAttempts: number;
  /** After a POST that got no answer, wait this long before asking Telnyx about it. */
  readonly settleMs: number;
  /** The first wait after a failed POST (doubling). */
  readonly backoffMs: number;
  /** Sent to Telnyx as `webhook_url`, so its webhooks reach our webhook service. */
  readonly webhookUrl?: string | undefined;
  /**
   * Aborted when the worker shuts down: a job not yet sending hands its fax back to the queue (its
   * slots freed) instead of waiting for its turn or for Telnyx's 429s to end; a POST already on its
   * way is waited for and recorded.
   */
  readonly stopping?: AbortSignal;
  readonly metrics?: FaxMetrics;
}

/** Whether a claimed fax may be sent now. */
type Sendable =
  | { readonly kind: 'ok' }
  | { readonly kind: 'expired'; readonly detail: string }
  | { readonly kind: 'closed'; readonly opensAt: number };

/** A submission that may succeed on another try (BullMQ retries it with backoff). */
export class RetryableSubmitError extends Error {
  readonly code = 'SUBMIT_RETRYABLE';
}

/** Answers that may come from a gateway while Telnyx is still working on the request behind it. */
const GATEWAY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/** Longest pause between 429s: the pause doubles from 0.5 s, or is Telnyx's reset time if longer. */
const MAX_THROTTLE_MS = 60_000;

/**
 * Sends one attempt of a queued fax to Telnyx and records the outcome. Only a fax still `queued` at
 * this job's attempt is sent: a job that runs again after its fax was accepted does nothing.
 *
 * Before the POST the fax takes a channel slot in every scope (shared/slots); if one is full, the job
 * is parked as a BullMQ delayed job (no attempt used) and promoted the moment a slot frees for it.
 */
export async function dispatchFax(deps: DispatchDeps, job: Job<FaxJobData>, token?: string): Promise<void> {
  const { faxId } = job.data;
  const attempt = job.data.attempt ?? 1;
  const jobId = job.id ?? faxId;
  // This run of the job: the one the fax's submitting mark names while it may POST (lib/slots.lua).
  const run = token ?? randomUUID();
  const log = deps.logger.child({ faxId, attempt });
  const count = (result: DispatchResult) => deps.metrics?.dispatched(result);
  const stopped = () => deps.stopping?.aborted === true;
  if (stopped()) {
    // Shutting down: not claimed, nothing taken; the job is due again at once, for another worker.
    await job.moveToDelayed(Date.now(), token);
    count('handed_back');
    throw new DelayedError();
  }
  const claimedAt = Date.now();
  const claimedBefore = performance.now();
  const slot = await acquireSlots(deps, {
    faxId,
    jobId,
    attempt,
    rateIntervalMs: deps.limiter.intervalMs,
    run,
  });
  if (slot.kind === 'unknown') throw new UnrecoverableError(`no record for fax ${faxId}`);
  if (slot.kind === 'moved-on') {
    count('moved_on');
    log.info({ status: slot.status, current: slot.attempt }, 'attempt already dispatched; nothing to do');
    return;
  }
  if (slot.kind === 'not-yet') {
    // Scheduled: the job was delayed to its send_at; one that runs early waits again, holding nothing.
    await job.moveToDelayed(slot.dueAt, token);
    count('scheduled');
    throw new DelayedError();
  }
  await deps.handoff.wake(slot.wake);
  if (slot.kind === 'parked') {
    // Out of the worker without using an attempt; the far timestamp is only a safety net, the
    // release of a slot promotes the job.
    await job.moveToDelayed(Date.now() + deps.slots.leaseMs, token);
    // A slot that freed while the job was still active could not promote it: it does so itself.
    if (await isWoken(deps, faxId)) await deps.handoff.wake([jobId]);
    count('parked');
    log.debug({ scope: slot.scope }, 'waiting for a channel slot');
    throw new DelayedError();
  }

  const { client_state: callerState, webhook_url: callerWebhook, ...request } = telnyxFields(slot.request);
  const event = { eventId: newEventId(), faxId, attempt, direction: 'outbound' as const, dedupe: false };
  /** Records an outcome; a failure verdict is counted as `result` unless another run holds the attempt. */
  const recordOutcome = async (
    fax: Omit<FaxEvent, 'occurredAt'>,
    result?: DispatchResult,
  ): Promise<ApplyResult> => {
    const applied = await applyEvent(deps, { ...fax, occurredAt: new Date().toISOString() });
    await deps.handoff.after(applied);
    if (result !== undefined) count(applied.outcome === 'refused' ? 'superseded' : result);
    if (applied.outcome === 'refused')
      log.warn('another run holds this attempt: its verdict stands, not this one');
    return applied;
  };
  const failSubmission = (detail: string, payload: unknown = {}) => {
    return recordOutcome(
      {
        ...event,
        eventType: OWN_EVENTS.failed,
        status: 'failed',
        failureReason: 'submission_failed',
        detail,
        payload,
        onlyIfRun: run,
      },
      'failed',
    );
  };
  /** Back to BullMQ's delayed set until `at`, using no attempt (slots and mark left as they are). */
  const waitUntil = async (at: number, why: string, result: DispatchResult = 'uncertain'): Promise<never> => {
    await job.moveToDelayed(at, token);
    count(result);
    log.info({ at: new Date(at).toISOString() }, why);
    throw new DelayedError();
  };
  /**
   * Shutting down before this run sent anything that may have reached Telnyx: the slots go back, the
   * submitting mark is cleared, and the job is due again at once, for another (or the next) worker.
   */
  const handBackUnsent = async (): Promise<never> => {
    await deps.handoff.wake(await handBack(deps, faxId, attempt, run));
    await job.moveToDelayed(Date.now(), token);
    count('handed_back');
    log.info('shutting down: fax handed back to the queue, unsent');
    throw new DelayedError();
  };

  if (slot.interruptedAt !== undefined) {
    // Nothing is sent before Telnyx is asked. An earlier POST of this attempt may have created the fax: right after a 5xx answer, or, after a
    // run that died or got no answer, once twice our timeout has passed since the attempt began.
    // Redis's times, compared with Redis's clock (at the claim): every worker waits alike.
    const settledAt = slot.lookupAfter > 0 ? slot.lookupAfter : slot.interruptedAt + deps.settleMs;
    if (slot.now < settledAt) {
      await waitUntil(
        Date.now() + (settledAt - slot.now),
        'waiting before asking Telnyx about an interrupted POST',
      );
    }
    let earlier: TelnyxFax | undefined;
    try {
      earlier = await findEarlierSubmission(deps, {
        faxId,
        attempt,
        to: request.to,
        since: slot.interruptedAt,
      });
    } catch (error) {
      // Shutting down mid-lookup: the question stays open (slots and mark kept) for the next run.
      if (stopped()) await waitUntil(Date.now(), 'shutting down: lookup left to the next run', 'handed_back');
      log.warn({ err: error }, 'cannot tell whether an interrupted POST reached Telnyx; asking again later');
      await waitUntil(Date.now() + deps.settleMs, 'asking Telnyx again later');
    }
    if (earlier) {
      count('found');
      await recordOutcome({
        ...event,
        eventType: OWN_EVENTS.submitted,
        status: 'submitted',
        telnyxFaxId: earlier.id,
        detail: 'found at Telnyx after an interrupted submission; not sent again',
        payload: earlier,
      });
      log.info(
        { telnyxFaxId: earlier.id },
        'interrupted submission had reached Telnyx: recorded, not sent again',
      );
      return;
    }
    // Certain now: none of this attempt's POSTs created a fax. The next POST starts a fresh mark
    // (below): were it interrupted too, the lookup after it must wait for it to settle.
    if (slot.failedPosts >= deps.submitAttempts) {
      await failSubmission(`no POST of ${slot.failedPosts} reached Telnyx; none created a fax`);
      return;
    }
  }

  const expires = expiresAt(deps.retryPolicy, slot.createdAt, slot.request.ttl_seconds);
  const expire = (detail: string) => {
    return recordOutcome(
      {
        ...event,
        eventType: OWN_EVENTS.failed,
        status: 'failed',
        failureReason: 'expired',
        detail,
        payload: {},
        onlyIfRun: run,
      },
      'expired',
    );
  };
  /**
   * Whether the fax may still be sent now: its time-to-live not run out, its sending window open.
   * Asked before the first POST and again before any POST after a wait (its turn under the rate
   * limit, a 429 pause, a slow connection): a fax claimed just before its window closed is not sent
   * after it. Redis's clock (at the claim), not this machine's: every worker decides alike.
   */
  const sendable = (): Sendable => {
    const now = slot.now + (Date.now() - claimedAt);
    if (now > expires) {
      return {
        kind: 'expired',
        detail: `not sent: its time-to-live ran out at ${new Date(expires).toISOString()}`,
      };
    }
    const window = slot.request.sending_window;
    if (!window) return { kind: 'ok' };
    const opensAt = nextOpening(window, now);
    if (opensAt > expires) {
      return {
        kind: 'expired',
        detail: `not sent: its sending window opens at ${new Date(opensAt).toISOString()}, after its time-to-live (${new Date(expires).toISOString()})`,
      };
    }
    return opensAt > now ? { kind: 'closed', opensAt } : { kind: 'ok' };
  };
  /** Nothing was sent: expired, or held until its window opens (its slots go to the next fax). */
  const notSendable = async (verdict: Exclude<Sendable, { kind: 'ok' }>): Promise<void> => {
    if (verdict.kind === 'expired') {
      await expire(verdict.detail);
      return;
    }
    await deps.handoff.wake(await holdUntil(deps, faxId, attempt, verdict.opensAt, run));
    await waitUntil(verdict.opensAt, 'sending window closed: held until it opens', 'scheduled');
  };
  const verdict = sendable();
  if (verdict.kind !== 'ok') return notSendable(verdict);

  if (stopped()) await handBackUnsent();
  if (slot.waitMs > 0) {
    try {
      await sleep(slot.waitMs, undefined, deps.stopping ? { signal: deps.stopping } : {});
      // A 429 elsewhere while this fax waited for its turn pauses it too.
      await deps.limiter.waitOutPause();
    } catch (error) {
      if (stopped()) await handBackUnsent();
      throw error;
    }
  }
  const webhookUrl = deps.webhookUrl ?? callerWebhook;
  const outcome = await submitThrottled(
    deps,
    log,
    {
      faxId,
      attempt,
      run,
      // A claim that marked the attempt just now, with no wait since, is its own stamp.
      ...(slot.interruptedAt === undefined && slot.waitMs === 0 ? { claimedBefore } : {}),
      sendable,
    },
    {
      ...request,
      client_state: encodeClientState({ faxId, attempt, callerState }),
      ...(webhookUrl ? { webhook_url: webhookUrl } : {}),
    },
  );

  switch (outcome.kind) {
    case 'stopped':
      return handBackUnsent();
    case 'expired':
    case 'closed':
      return notSendable(outcome);
    case 'moved-on':
      count('moved_on');
      log.info('the fax moved on while it waited to be sent: not sent');
      return;
    case 'superseded':
      count('superseded');
      log.warn('another run took this job over while this one was stalled: not sent');
      return;
    case 'not-sent':
      // Nothing of the attempt is at Telnyx: slots and mark go, as after a refused connection.
      await deps.handoff.wake(await releaseSlots(deps, faxId, attempt, run, true));
      await waitUntil(
        Date.now() + deps.backoffMs,
        'connections to Telnyx open too slowly: trying again shortly',
        'retry',
      );
      return;
    case 'accepted':
      count('submitted');
      await recordOutcome({
        ...event,
        eventType: OWN_EVENTS.submitted,
        status: 'submitted',
        telnyxFaxId: outcome.fax.id,
        payload: outcome.fax,
      });
      log.info({ telnyxFaxId: outcome.fax.id }, 'fax accepted by Telnyx');
      return;
    case 'rejected':
      await recordOutcome(
        {
          ...event,
          eventType: OWN_EVENTS.failed,
          status: 'failed',
          failureReason: 'rejected',
          detail: `Telnyx answered ${outcome.status}: ${outcome.detail}`,
          payload: { http_status: outcome.status },
          onlyIfRun: run,
        },
        'rejected',
      );
      log.warn({ httpStatus: outcome.status, detail: outcome.detail }, 'fax rejected by Telnyx');
      return;
    case 'retryable': {
      // Telnyx may have the fax (`ambiguous`): its slot stays held, and the next run asks Telnyx before
      // anything else — after a backoff if Telnyx answered (5xx), once the request has surely ended
      // there if not.
      const backoffMs = (tries: number) => deps.backoffMs * 2 ** Math.min(tries, 6);
      const previous = slot.failedPosts;
      // A 502, 503 or 504 may come from a gateway in front of Telnyx that gave up while Telnyx goes
      // on with the request: like no answer at all, Telnyx is asked only once it must be done.
      const lookupMs = outcome.ambiguous
        ? outcome.status === undefined || GATEWAY_STATUSES.has(outcome.status)
          ? deps.settleMs
          : backoffMs(previous)
        : undefined;
      const failedPosts = await failedPost(deps, faxId, attempt, run, lookupMs);
      if (failedPosts === undefined) {
        count('superseded');
        log.warn('a POST failed after another run took this job over: left to that run');
        return;
      }
      log.warn(
        { httpStatus: outcome.status, detail: outcome.detail, failedPosts, ambiguous: outcome.ambiguous },
        'fax submission failed',
      );
      if (lookupMs !== undefined) {
        await waitUntil(Date.now() + lookupMs, 'POST may have reached Telnyx; asking before sending again');
      }
      // Certainly no fax was created: its channel is free again and, if it is tried again, the next
      // run sends without first asking Telnyx (every earlier POST of the attempt was asked about).
      const again = failedPosts < deps.submitAttempts;
      await deps.handoff.wake(await releaseSlots(deps, faxId, attempt, run, again));
      if (again) {
        count('retry');
        throw new RetryableSubmitError(outcome.detail);
      }
      await failSubmission(outcome.detail, { http_status: outcome.status ?? null });
      return;
    }
  }
}

const postOutcome = (outcome: Exclude<SubmitOutcome, { kind: 'not-sent' }>): PostOutcome => {
  if (outcome.kind !== 'retryable') return outcome.kind;
  if (outcome.status === 429) return 'rate_limited';
  return outcome.ambiguous ? 'uncertain' : 'failed';
};

/**
 * POSTs the fax (its turn under the shared rate limit was reserved with its slots). A 429 pauses every worker for the
 * time Telnyx gives (or a doubling backoff) and the same attempt is sent again: throttling never uses
 * up a fax's attempts, and its slot stays held, since nobody may send meanwhile anyway. Shutting down
 * ends the loop before the next POST (`stopped`: nothing on the way, and every 429 created nothing).
 */
async function submitThrottled(
  deps: DispatchDeps,
  log: Logger,
  post: {
    readonly faxId: string;
    readonly attempt: number;
    readonly run: string;
    /** When the claim that marked the attempt began (`performance.now()`), if it stands for a stamp. */
    readonly claimedBefore?: number;
    /** Whether the fax may still be sent, asked again before every POST after a wait. */
    readonly sendable: () => Sendable;
  },
  request: Parameters<TelnyxClient['submitFax']>[0],
): Promise<
  SubmitOutcome | { readonly kind: 'stopped' | 'moved-on' | 'superseded' } | Exclude<Sendable, { kind: 'ok' }>
> {
  let lateConnections = 0;
  for (let throttled = 0; ; throttled++) {
    try {
      if (throttled > 0) await deps.limiter.take();
    } catch (error) {
      if (deps.stopping?.aborted) return { kind: 'stopped' };
      throw error;
    }
    if (deps.stopping?.aborted) return { kind: 'stopped' };
    // Only the run the mark names may POST, and the mark must say when this POST began: a run taking
    // the job over waits from then for it to settle at Telnyx before asking whether it created the fax.
    // The clock is read before the stamp: however long this run stalls once the stamp is made, it counts.
    // The first POST right after a fresh claim needs no stamp of its own: the claim made one.
    let stampedBefore = post.claimedBefore;
    if (throttled > 0 || lateConnections > 0 || stampedBefore === undefined) {
      // Time has passed since the claim: its window may have closed, its time-to-live run out.
      const verdict = post.sendable();
      if (verdict.kind !== 'ok') return verdict;
      stampedBefore = performance.now();
      const stamp = await stampPost(deps, post.faxId, post.attempt, post.run);
      if (stamp !== 'post') return { kind: stamp };
    }
    // Written soon after the stamp or not at all: a run stalled past this (frozen, its connection
    // slow to open) may have been taken over meanwhile, and asks again (stamps again) instead.
    const outcome = await deps.telnyx.submitFax(request, { writeBy: stampedBefore + deps.settleMs / 4 });
    if (outcome.kind === 'not-sent') {
      if (++lateConnections >= 3) {
        // Certainly nothing was written, and the slowness is ours (a loaded machine), not Telnyx's:
        // no failed POST is counted; the fax is given back and tried again shortly.
        return { kind: 'not-sent' };
      }
      log.warn('the connection to Telnyx opened too late after the claim to send: checking the claim again');
      throttled--;
      continue;
    }
    deps.metrics?.posted(postOutcome(outcome));
    if (outcome.kind !== 'retryable' || outcome.status !== 429) return outcome;
    const backoffMs = Math.min(500 * 2 ** throttled, MAX_THROTTLE_MS);
    const pauseMs = Math.max(outcome.retryAfterMs ?? 0, backoffMs);
    log.warn({ pauseMs, detail: outcome.detail }, 'Telnyx rate limit (429): pausing all sending');
    await deps.limiter.pause(pauseMs);
  }
}
