/**
 * Every Redis key the pipeline uses, built here and nowhere else.
 * BullMQ's own keys live under `${prefix}:bull:${queue}:*`.
 */
export interface Keys {
  readonly prefix: string;
  /** BullMQ prefix for our queues. */
  readonly bullPrefix: string;
  /** The status stream every consumer reads. */
  readonly stream: string;
  /** Hash holding one fax's record. */
  fax(faxId: string): string;
  /** List of the stream entry ids that belong to one fax, in order. */
  faxHistory(faxId: string): string;
  /** Telnyx fax id → our fax id. */
  telnyxFax(telnyxFaxId: string): string;
  /** Marker that a webhook (by Telnyx event id) was already taken in. */
  seenEvent(eventId: string): string;
  /** Sorted set of faxes holding a Telnyx channel, scored by the time they were accepted. */
  readonly inFlight: string;
}

export const FAX_QUEUE = 'faxes';

export function createKeys(prefix: string, stream: string): Keys {
  return Object.freeze({
    prefix,
    bullPrefix: `${prefix}:bull`,
    stream,
    fax: (faxId: string) => `${prefix}:fax:${faxId}`,
    faxHistory: (faxId: string) => `${prefix}:fax:${faxId}:history`,
    telnyxFax: (telnyxFaxId: string) => `${prefix}:telnyx:${telnyxFaxId}`,
    seenEvent: (eventId: string) => `${prefix}:seen:${eventId}`,
    inFlight: `${prefix}:in-flight`,
  });
}
