/**
 * The fax status state machine. Statuses only move forward: each has a rank, and an event that would
 * lower it (a late or reordered webhook) is published but changes nothing.
 */
export const FAX_STATUSES = [
  'queued', // accepted by us, waiting in our queue
  'submitted', // accepted by Telnyx (202), holding a channel
  'media.processed',
  'originated',
  'sending',
  'delivered',
  'failed',
] as const;

export type FaxStatus = (typeof FAX_STATUSES)[number];

export const TERMINAL_RANK = 100;

const RANKS: Record<FaxStatus, number> = {
  queued: 0,
  submitted: 1,
  'media.processed': 2,
  originated: 3,
  sending: 4,
  delivered: TERMINAL_RANK,
  failed: TERMINAL_RANK,
};

export function statusRank(status: FaxStatus): number {
  return RANKS[status];
}

export function isTerminal(status: FaxStatus): boolean {
  return RANKS[status] >= TERMINAL_RANK;
}

/** Event types the pipeline itself publishes, beside Telnyx's own `fax.*` events. */
export const OWN_EVENTS = {
  enqueued: 'fax.enqueued',
  submitted: 'fax.submitted',
  failed: 'fax.failed',
  /** What reconciliation learnt from Telnyx (`GET /v2/faxes/{id}`) after a slot's lease ran out. */
  reconciled: 'fax.reconciled',
  /** A Telnyx channel-limit failure lowered one of our limits for a while. */
  limitLowered: 'fax.channel_limit.lowered',
  /** Cancelled before it reached Telnyx (final; failure_reason sender_canceled). */
  cancelled: 'fax.cancelled',
  /** A received fax's document is saved (FAX_INBOUND_DIR): the payload's `document_path` names the file. */
  mediaSaved: 'fax.media.saved',
  /** A received fax's document could not be saved after every try (its link stays at Telnyx). */
  mediaSaveFailed: 'fax.media.save_failed',
} as const;

/** Telnyx's outbound webhook events and the status each one moves a fax to. */
const TELNYX_OUTBOUND: Record<string, FaxStatus> = {
  'fax.queued': 'submitted',
  'fax.media.processed': 'media.processed',
  'fax.sending.started': 'sending',
  'fax.delivered': 'delivered',
  'fax.failed': 'failed',
};

export const INBOUND_EVENTS = [
  'fax.receiving.started',
  'fax.media.processing.started',
  'fax.received',
] as const;

/**
 * The status a Telnyx webhook moves an outbound fax to; undefined for inbound and unknown events,
 * which are published but change no state.
 */
export function statusForTelnyxEvent(eventType: string, direction: string): FaxStatus | undefined {
  if (direction === 'inbound') return undefined;
  return TELNYX_OUTBOUND[eventType];
}

/** The status a Telnyx fax `status` (as `GET /v2/faxes/{id}` answers) means for an outbound fax. */
const TELNYX_FAX_STATUS: Record<string, FaxStatus> = {
  queued: 'submitted',
  'media.processed': 'media.processed',
  originated: 'originated',
  sending: 'sending',
  delivered: 'delivered',
  failed: 'failed',
};

export function statusForTelnyxFax(status: string): FaxStatus | undefined {
  return TELNYX_FAX_STATUS[status];
}
