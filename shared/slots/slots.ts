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
  readonly connectionId: string;
  readonly to: string;
  /** BullMQ priority (0 = none; lower numbers first). */
  readonly priority: number;
}

export type AcquireResult =
  /** The fax holds a slot in every scope; send it. */
  | { readonly kind: 'held'; readonly wake: readonly string[] }
  /** `scope` is full: the fax waits in its line until a slot frees. */
  | { readonly kind: 'parked'; readonly scope: string; readonly wake: readonly string[] };

/** Takes a slot in every scope of a fax, all or none, or parks it (shared/scripts/acquire-slots.lua). */
export async function acquireSlots(store: SlotStore, request: SlotRequest): Promise<AcquireResult> {
  const [held, scope, wake] = (await store.redis.acquireSlots(
    store.keys.fax(request.faxId),
    slotArg(store.slots),
    request.faxId,
    request.jobId,
    request.connectionId,
    request.to,
    request.priority,
  )) as [number, string, string[]];
  return held === 1 ? { kind: 'held', wake } : { kind: 'parked', scope, wake };
}

/**
 * Gives back a fax's slots (a POST that created no fax, a lease with no call behind it); frees
 * nothing if the fax has moved on to another attempt. Resolves to the job ids to wake.
 */
export async function releaseSlots(
  store: SlotStore,
  faxId: string,
  attempt?: number,
): Promise<readonly string[]> {
  const [, wake] = (await store.redis.releaseSlots(
    store.keys.fax(faxId),
    slotArg(store.slots),
    faxId,
    attempt ?? '',
  )) as [number, string[]];
  return wake;
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
  readonly unqueued: readonly { readonly faxId: string; readonly attempt: number }[];
}

/** One round of the slot keeper's periodic work (shared/scripts/slot-tick.lua). */
export async function slotTick(store: SlotStore, batch: number, sweepMs: number): Promise<TickResult> {
  const [expired, wake, flat] = (await store.redis.slotTick(
    store.keys.slots.leases,
    slotArg(store.slots),
    batch,
    sweepMs,
  )) as [string[], string[], string[]];
  const unqueued: { faxId: string; attempt: number }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    unqueued.push({ faxId: flat[i] as string, attempt: Number(flat[i + 1]) });
  }
  return { expired, wake, unqueued };
}
