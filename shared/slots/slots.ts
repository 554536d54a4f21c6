import type { SendFaxRequest } from '../fax-request.ts';
import type { Keys } from '../keys.ts';
import type { FaxRedis } from '../redis.ts';
import { type SlotSettings, slotArg } from './settings.ts';

/** What the slot scripts need: one Redis connection with them defined, the keys and the settings. */
export interface SlotStore {
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly slots: SlotSettings;
}

export interface SlotRequest {
  readonly faxId: string;
  /** The BullMQ job that will send it: woken when a slot frees. */
  readonly jobId: string;
  /** The attempt that job sends: nothing is taken unless the fax is still queued at it. */
  readonly attempt: number;
  /** Ms between Telnyx requests under the shared rate limit (0 = none). */
  readonly rateIntervalMs: number;
  /** This run of the job (its BullMQ lock token): the one run that may POST the attempt. */
  readonly run: string;
}

export type AcquireResult =
  /** The fax holds a slot in every scope; POST it after `waitMs` (its turn under the rate limit). */
  | {
      readonly kind: 'held';
      readonly request: SendFaxRequest;
      readonly waitMs: number;
      readonly wake: readonly string[];
      /** An earlier run of this attempt began submitting then (ms): it may have created the fax. */
      readonly interruptedAt: number | undefined;
      /** When the fax was queued (ms). */
      readonly createdAt: number;
      /** POSTs of this attempt that failed, and when Telnyx may be asked about the last (ms; 0 = unset). */
      readonly failedPosts: number;
      readonly lookupAfter: number;
      /** Redis's clock at the claim (ms): the one clock every worker shares. */
      readonly now: number;
    }
  /** `scope` is full: the fax waits in its line until a slot frees. */
  | { readonly kind: 'parked'; readonly scope: string; readonly wake: readonly string[] }
  /** The fax is no longer queued at this attempt (sent, ended, or sent again as another attempt). */
  | { readonly kind: 'moved-on'; readonly status: string; readonly attempt: number }
  /** Scheduled (`send_at`) for later: nothing was taken. */
  | { readonly kind: 'not-yet'; readonly dueAt: number }
  | { readonly kind: 'unknown' };

/**
 * A worker's claim on one attempt of a fax (shared/scripts/acquire-slots.lua): a slot in every scope,
 * all or none, and its turn under the rate limit; or a place in the line of the first full scope.
 */
export async function acquireSlots(store: SlotStore, claim: SlotRequest): Promise<AcquireResult> {
  const reply = (await store.redis.acquireSlots(
    store.keys.fax(claim.faxId),
    store.keys.rate.next,
    store.keys.rate.pause,
    slotArg(store.slots),
    claim.faxId,
    claim.jobId,
    claim.attempt,
    claim.rateIntervalMs,
    claim.run,
  )) as [number, string?, (string | number)?, string[]?, number?, number?, number?, number?, number?];
  const [code, first, second, wake = [], interruptedAt, createdAt, failedPosts, lookupAfter, now] = reply;
  switch (code) {
    case 1:
      return {
        kind: 'held',
        request: JSON.parse(first as string) as SendFaxRequest,
        waitMs: Number(second),
        wake,
        interruptedAt: interruptedAt ? interruptedAt : undefined,
        createdAt: Number(createdAt ?? 0),
        failedPosts: Number(failedPosts ?? 0),
        lookupAfter: Number(lookupAfter ?? 0),
        now: Number(now ?? Date.now()),
      };
    case 0:
      return { kind: 'parked', scope: String(second), wake };
    case 2:
      return { kind: 'moved-on', status: String(first), attempt: Number(second) };
    case 3:
      return { kind: 'not-yet', dueAt: Number(first) };
    default:
      return { kind: 'unknown' };
  }
}

/**
 * Gives back a fax's slots (a POST that created no fax, a lease with no call behind it); frees
 * nothing if the fax has moved on to another attempt, or, given a job run, if another run has taken
 * the job over. Resolves to the job ids to wake.
 */
export async function releaseSlots(
  store: SlotStore,
  faxId: string,
  attempt?: number,
  run = '',
  /** With `run`: nothing of the attempt can be at Telnyx, so its mark goes too (no lookup next time). */
  nothingSent = false,
): Promise<readonly string[]> {
  const [, wake] = (await store.redis.releaseSlots(
    store.keys.fax(faxId),
    slotArg(store.slots),
    faxId,
    attempt ?? '',
    '',
    run,
    nothingSent ? '1' : '',
  )) as [number, string[]];
  return wake;
}

/**
 * Gives back the slots of a fax that was not sent and holds it until `until` (ms): its sending window
 * is closed. Clears the attempt's submitting mark (nothing was POSTed). Resolves to the job ids to wake.
 */
export async function holdUntil(
  store: SlotStore,
  faxId: string,
  attempt: number,
  until: number,
  run: string,
): Promise<readonly string[]> {
  const [, wake] = (await store.redis.releaseSlots(
    store.keys.fax(faxId),
    slotArg(store.slots),
    faxId,
    attempt,
    until,
    run,
    '',
  )) as [number, string[]];
  return wake;
}

/**
 * Gives back an attempt a worker claimed and has not sent (shutting down; shared/scripts/hand-back.lua):
 * its slots are freed and its `submitting` mark cleared. Only for an attempt none of whose POSTs can
 * have created the fax. Resolves to the job ids to wake.
 */
export async function handBack(
  store: SlotStore,
  faxId: string,
  attempt: number,
  run: string,
): Promise<readonly string[]> {
  const [, wake] = (await store.redis.handBack(
    store.keys.fax(faxId),
    slotArg(store.slots),
    faxId,
    attempt,
    run,
  )) as [number, string[]];
  return wake;
}

/**
 * Marks the attempt as being POSTed now by this run (shared/scripts/stamp-post.lua): `post` (go
 * ahead), `moved-on` (the fax is no longer queued at that attempt) or `superseded` (another run took
 * the job over). Only `post` may be followed by a POST.
 */
export async function stampPost(
  store: SlotStore,
  faxId: string,
  attempt: number,
  run: string,
): Promise<'post' | 'moved-on' | 'superseded'> {
  const reply = Number(await store.redis.stampPost(store.keys.fax(faxId), attempt, run));
  return reply === 1 ? 'post' : reply === 0 ? 'moved-on' : 'superseded';
}

/**
 * Records a failed POST of this run's attempt (shared/scripts/failed-post.lua) and, when it may have
 * created the fax, when Telnyx may be asked about it (`lookupAfterMs` from now, Redis's clock).
 * Resolves to the attempt's failed POSTs so far, or undefined if another run took the job over.
 */
export async function failedPost(
  store: SlotStore,
  faxId: string,
  attempt: number,
  run: string,
  lookupAfterMs?: number,
): Promise<number | undefined> {
  const reply = Number(
    await store.redis.failedPost(
      store.keys.fax(faxId),
      attempt,
      run,
      lookupAfterMs === undefined ? '' : Math.round(lookupAfterMs),
    ),
  );
  return reply < 0 ? undefined : reply;
}

/** Takes a fax out of the line it waits in; resolves to the job ids to wake. */
export async function leaveLine(store: SlotStore, faxId: string): Promise<readonly string[]> {
  return (await store.redis.leaveLine(store.keys.fax(faxId), slotArg(store.slots), faxId)) as string[];
}

/**
 * Reconciliation's release: a fax's slots held for a POST that no job will make go back, unless the
 * fax has moved on or a run has claimed it since `claim` (its `submitting_run` as read; null: none)
 * was read. The fax is put in the outbox, so that it gets its job again even if the caller dies before
 * queueing it. Returns whether anything was freed, and the jobs to wake.
 */
export async function releaseForRevival(
  store: SlotStore,
  faxId: string,
  attempt: number,
  claim: string | null,
): Promise<{ readonly freed: boolean; readonly wake: readonly string[] }> {
  const [freed, wake] = (await store.redis.releaseSlots(
    store.keys.fax(faxId),
    slotArg(store.slots),
    faxId,
    attempt,
    '',
    '',
    '',
    `=${claim ?? ''}`,
  )) as [number, string[]];
  return { freed: freed > 0, wake };
}

/** Extends a fax's lease; false if it holds no slots. */
export async function renewLease(store: SlotStore, faxId: string): Promise<boolean> {
  return (await store.redis.renewLease(store.keys.fax(faxId), slotArg(store.slots), faxId)) === 1;
}

/** True while the fax has been woken for a slot and not yet taken it. */
export async function isWoken(store: SlotStore, faxId: string): Promise<boolean> {
  return (await store.redis.zscore(store.keys.slots.woken, faxId)) !== null;
}

export interface TickResult {
  /** Faxes whose lease ran out: ask Telnyx about them (claimed for `claimMs`). */
  readonly expired: readonly string[];
  /** Jobs to promote. */
  readonly wake: readonly string[];
  /** Faxes whose next job was never queued. */
  readonly unqueued: readonly { readonly faxId: string; readonly attempt: number; readonly dueAt: number }[];
  /** Faxes woken long ago that have not taken their slot: promote again, or find their job gone. */
  readonly stuck: readonly { readonly faxId: string; readonly jobId: string }[];
}

/** One round of the slot keeper's periodic work (shared/scripts/slot-tick.lua). */
export async function slotTick(store: SlotStore, batch: number, sweepMs: number): Promise<TickResult> {
  const [expired, wake, flat, stuckFlat] = (await store.redis.slotTick(
    store.keys.slots.leases,
    slotArg(store.slots),
    batch,
    sweepMs,
  )) as [string[], string[], string[], string[]];
  const unqueued: { faxId: string; attempt: number; dueAt: number }[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    unqueued.push({ faxId: flat[i] as string, attempt: Number(flat[i + 1]), dueAt: Number(flat[i + 2]) });
  }
  const stuck: { faxId: string; jobId: string }[] = [];
  for (let i = 0; i + 1 < stuckFlat.length; i += 2) {
    stuck.push({ faxId: stuckFlat[i] as string, jobId: stuckFlat[i + 1] as string });
  }
  return { expired, wake, unqueued, stuck };
}
