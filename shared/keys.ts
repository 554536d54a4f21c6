import { createHash } from 'node:crypto';

/**
 * Every Redis key the pipeline uses, built here and nowhere else.
 * BullMQ's own keys live under `${prefix}:bull:${queue}:*`. Every key starts with the prefix or the
 * stream key: on a Redis Cluster both carry one hash tag (`{fax}`), so every key is in one slot.
 */
export interface Keys {
  readonly prefix: string;
  /** BullMQ prefix for our queues. */
  readonly bullPrefix: string;
  /** The status stream every consumer reads. */
  readonly stream: string;
  /** Entries no consumer of a group could handle, after `maxDeliveries` tries (subscribe()). */
  readonly deadLetter: string;
  /** Hash entry id → deliveries so far, of one consumer group's entries not yet acknowledged (subscribe()). */
  deliveries(group: string): string;
  /** Hash holding one fax's record. */
  fax(faxId: string): string;
  /** List of the stream entry ids that belong to one fax, in order. */
  faxHistory(faxId: string): string;
  /** Set of the fax ids of one batch (one request, many recipients). */
  batch(batchId: string): string;
  /** Telnyx fax id → our fax id. */
  telnyxFax(telnyxFaxId: string): string;
  /** Marker that a webhook (by Telnyx event id) was already taken in. */
  seenEvent(eventId: string): string;
  /** An Idempotency-Key's claim (by the key's SHA-256): the fax it created and its request's fingerprint. */
  idempotency(key: string): string;
  /** Sorted set of faxes holding a Telnyx channel, scored by the time they were accepted. */
  readonly inFlight: string;
  /**
   * Channel slot state. The Lua scripts build these names (and `:slots:seq`, `:slots:sweep`) from the
   * prefix themselves: shared/scripts/lib/slots.lua lists them all.
   */
  readonly slots: SlotKeys;
  /** The shared Telnyx API rate limiter: next free send time, and a pause after a 429. */
  readonly rate: { readonly next: string; readonly pause: string };
  /**
   * The slot keepers' shared chores: claims that let one worker at a time trim the stream and scan
   * failed jobs, and where the scan of older failed jobs goes on from.
   */
  readonly keeper: {
    readonly retention: string;
    readonly failedScan: string;
    readonly failedScanFrom: string;
  };
}

export interface SlotKeys {
  /** Hash of limits set at run time (`fax limits set`): `account`, `destination`, `connection:<id>`, `profile:<name>`, `profile-of:<connection id>`. */
  readonly limits: string;
  /** Hash scope → `<limit>:<until ms>`: limits lowered after Telnyx reported them exceeded. */
  readonly lowered: string;
  /** Zset of the faxes holding a slot in one scope (score: when taken). */
  held(scope: string): string;
  /** Zset of the faxes waiting for a slot in one scope (score: priority, then arrival). */
  parked(scope: string): string;
  /** Zset fax → lease expiry (ms, Redis time): past it, Telnyx is asked what became of the fax. */
  readonly leases: string;
  /** Zset fax → when it was woken to take a freed slot. */
  readonly woken: string;
  /** Set of scopes with holders. */
  readonly active: string;
  /** Set of scopes with waiting faxes. */
  readonly waiting: string;
  /** Zset fax → due time: faxes whose next job still has to be added to the queue. */
  readonly outbox: string;
}

export const FAX_QUEUE = 'faxes';
/** Received faxes whose document is to be saved (FAX_INBOUND_DIR). */
export const INBOUND_QUEUE = 'fax-inbound';

export function createKeys(prefix: string, stream: string): Keys {
  return Object.freeze({
    prefix,
    bullPrefix: `${prefix}:bull`,
    stream,
    deadLetter: `${stream}:dead`,
    deliveries: (group: string) => `${stream}:tries:${group}`,
    fax: (faxId: string) => `${prefix}:fax:${faxId}`,
    faxHistory: (faxId: string) => `${prefix}:fax:${faxId}:history`,
    batch: (batchId: string) => `${prefix}:batch:${batchId}`,
    telnyxFax: (telnyxFaxId: string) => `${prefix}:telnyx:${telnyxFaxId}`,
    seenEvent: (eventId: string) => `${prefix}:seen:${eventId}`,
    idempotency: (key: string) => `${prefix}:idem:${createHash('sha256').update(key).digest('hex')}`,
    inFlight: `${prefix}:in-flight`,
    slots: Object.freeze({
      limits: `${prefix}:slots:limits`,
      lowered: `${prefix}:slots:lowered`,
      held: (scope: string) => `${prefix}:slots:held:${scope}`,
      parked: (scope: string) => `${prefix}:slots:parked:${scope}`,
      leases: `${prefix}:slots:leases`,
      woken: `${prefix}:slots:woken`,
      active: `${prefix}:slots:active`,
      waiting: `${prefix}:slots:waiting`,
      outbox: `${prefix}:slots:outbox`,
    }),
    rate: Object.freeze({ next: `${prefix}:rate:next`, pause: `${prefix}:rate:pause` }),
    keeper: Object.freeze({
      retention: `${prefix}:retention`,
      failedScan: `${prefix}:failed-scan`,
      failedScanFrom: `${prefix}:failed-scan-from`,
    }),
  });
}
