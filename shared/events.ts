import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Keys } from './keys.ts';
import type { FaxRedis } from './redis.ts';
import { capacityScopeKind } from './slots/scopes.ts';
import { type SlotSettings, slotArg } from './slots/settings.ts';
import { planRetry, type RetryPolicy } from './retry-policy.ts';
import { type FaxStatus, isTerminal, statusRank } from './status.ts';

/** How long a Telnyx event id is remembered for deduplication (Telnyx retries for far less). */
export const SEEN_EVENT_SECONDS = 7 * 24 * 3600;

export interface FaxEvent {
  readonly eventId: string;
  readonly eventType: string;
  /** Our fax id; undefined for faxes we did not send (inbound, or another system's). */
  readonly faxId: string | undefined;
  /** The status the event moves the fax to; undefined: published, changes nothing. */
  readonly status: FaxStatus | undefined;
  readonly attempt?: number;
  readonly occurredAt: string;
  readonly telnyxFaxId?: string;
  readonly failureReason?: string;
  readonly detail?: string;
  readonly direction: 'outbound' | 'inbound';
  readonly payload: unknown;
  /** Telnyx events are deduplicated by id; our own are unique by construction. */
  readonly dedupe: boolean;
  /** client_state to publish for faxes that are not ours (ours carry the caller's from the record). */
  readonly clientState?: string;
  /**
   * A final status whose fax keeps its channel slots until a final webhook of the same attempt or
   * the lease's reconciliation: a POST that may have created a call failed for good.
   */
  readonly keepSlots?: boolean;
  /**
   * For a failure of one of our faxes: when it is sent again (ms). Left out, {@link applyEvent} asks
   * the retry policy; a fax without one ends with this failure.
   */
  readonly retryAt?: number;
  /** A new fax: its record's fields, created with this event (and its first job put in the outbox). */
  readonly createRecord?: Readonly<Record<string, string>>;
  /** Apply only while the fax is queued and not being submitted (a cancel); else outcome `refused`. */
  readonly onlyIfNotSubmitting?: boolean;
  /**
   * Apply only while this job run holds the attempt's submitting mark (a worker's own verdict that the
   * fax failed); else outcome `refused`: another run took the job over and decides.
   */
  readonly onlyIfRun?: string;
}

export interface ApplyResult {
  readonly outcome: 'duplicate' | 'applied' | 'published' | 'exists' | 'refused';
  readonly streamId: string;
  readonly status: string;
  readonly final: boolean;
  readonly attempt: number;
  /** Our fax id ('' when the event is not for one of our faxes). */
  readonly faxId: string;
  readonly telnyxFaxId: string;
  /** BullMQ job ids of faxes woken for the slots this event freed: promote them. */
  readonly wake: readonly string[];
  /** Set when a failure queued the fax again: the attempt to queue, and when it is due (ms). */
  readonly requeuedAttempt: number | undefined;
  readonly retryAt: number | undefined;
  /** Set when a channel-limit failure lowered a scope's limit. */
  readonly lowered: { readonly scope: string; readonly limit: number } | undefined;
  /** The fax's moments, for latency metrics (ms; 0 = unknown). */
  readonly times: FaxTimes;
}

export interface FaxTimes {
  /** When the fax was first due: queued, or its `send_at`. */
  readonly firstDue: number;
  /** When its current attempt was due (the first, or a retry's moment). */
  readonly attemptDue: number;
  /** When Telnyx accepted its current attempt, before this event. */
  readonly submittedAt: number;
  /** When this event was recorded (Redis time). */
  readonly recordedAt: number;
}

/** Told of every recorded event, in the process that recorded it (metrics). */
export interface EventObserver {
  applied(event: FaxEvent, result: ApplyResult): void;
}

const OUTCOMES = ['duplicate', 'applied', 'published', 'exists', 'refused'] as const;

export interface EventSink {
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly streamMaxLen: number;
  readonly slots: SlotSettings;
  /** Decides whether a failed fax is sent again. */
  readonly retryPolicy: RetryPolicy;
  readonly observer?: EventObserver | undefined;
}

/**
 * KEYS and ARGV of shared/scripts/apply-event.lua for one event, in the order its contract header
 * gives; built here only, for a direct call or a call inside a transaction.
 */
export function applyEventArgs(sink: Omit<EventSink, 'redis'>, event: FaxEvent): (string | number)[] {
  const { keys } = sink;
  const faxId = event.faxId ?? '';
  const capacity =
    event.status === 'failed' && event.direction === 'outbound'
      ? capacityScopeKind(event.failureReason)
      : undefined;
  return [
    keys.fax(faxId === '' ? '-' : faxId),
    keys.stream,
    keys.seenEvent(event.eventId),
    keys.faxHistory(faxId === '' ? '-' : faxId),
    keys.inFlight,
    keys.telnyxFax(event.telnyxFaxId ?? '-'),
    event.eventId,
    event.eventType,
    event.status ?? '',
    event.status === undefined ? 0 : statusRank(event.status),
    event.attempt ?? '',
    event.occurredAt,
    event.telnyxFaxId ?? '',
    event.failureReason ?? '',
    JSON.stringify(event.payload ?? {}),
    event.dedupe ? SEEN_EVENT_SECONDS : 0,
    faxId,
    event.direction,
    event.detail ?? '',
    sink.streamMaxLen,
    event.clientState ?? '',
    slotArg(sink.slots),
    capacity ?? '',
    event.keepSlots ? '1' : '',
    event.retryAt ?? '',
    event.retryAt === undefined ? '' : new Date(event.retryAt).toISOString(),
    event.createRecord ? JSON.stringify(event.createRecord) : '',
    event.onlyIfNotSubmitting ? '1' : '',
    event.onlyIfRun ?? '',
  ];
}

/**
 * Records and publishes one event atomically (see shared/scripts/apply-event.lua). A failure of one of
 * our faxes first gets its retry decided: a channel-limit refusal is sent again soon (up to
 * `maxCapacityRetries` times), anything else as the retry policy says.
 */
export async function applyEvent(sink: EventSink, incoming: FaxEvent): Promise<ApplyResult> {
  const event = await withRetryPlan(sink, incoming);
  const reply = (await sink.redis.applyEvent(...applyEventArgs(sink, event))) as [
    number,
    string,
    string,
    number,
    number,
    string,
    string,
    string[],
    number,
    string,
    number,
    number?,
    number?,
    number?,
    number?,
  ];
  const [code, streamId, status, final, attempt, faxIdOut, telnyxFaxId, wake, requeued, lowered, limit] =
    reply;
  const [firstDue = 0, attemptDue = 0, submittedAt = 0, recordedAt = 0] = reply.slice(11) as number[];
  const result: ApplyResult = {
    wake: wake ?? [],
    requeuedAttempt: requeued ? requeued : undefined,
    retryAt: requeued ? event.retryAt : undefined,
    lowered: lowered ? { scope: lowered, limit: limit ?? 0 } : undefined,
    outcome: OUTCOMES[code] ?? 'published',
    streamId,
    status,
    final: final === 1,
    attempt,
    faxId: faxIdOut ?? '',
    telnyxFaxId: telnyxFaxId ?? '',
    times: { firstDue, attemptDue, submittedAt, recordedAt },
  };
  sink.observer?.applied(event, result);
  return result;
}

async function withRetryPlan(sink: EventSink, event: FaxEvent): Promise<FaxEvent> {
  if (
    event.status !== 'failed' ||
    event.direction !== 'outbound' ||
    !event.faxId ||
    event.retryAt !== undefined
  ) {
    return event;
  }
  const [status, attemptField, capacityField, createdAt, dueAt, ttl] = await sink.redis.hmget(
    sink.keys.fax(event.faxId),
    'status',
    'attempt',
    'capacity_retries',
    'created_at',
    'due_at',
    'ttl_seconds',
  );
  const attempt = Number(attemptField ?? 1);
  if (
    !status ||
    isTerminal(status as FaxStatus) ||
    (event.attempt !== undefined && event.attempt !== attempt)
  ) {
    return event;
  }
  const capacityRetries = Number(capacityField ?? 0);
  const now = Date.now();
  if (capacityScopeKind(event.failureReason) !== undefined) {
    return capacityRetries < sink.slots.maxCapacityRetries
      ? { ...event, retryAt: now + sink.slots.capacityRetryMs }
      : {
          ...event,
          detail: event.detail ?? `${event.failureReason}: ${capacityRetries} channel-limit retries made`,
        };
  }
  const plan = planRetry(sink.retryPolicy, {
    failureReason: event.failureReason,
    attempts: attempt - capacityRetries,
    // A scheduled fax's time-to-live runs from when it was due.
    createdAt: Number(dueAt || createdAt || now),
    ttlSeconds: ttl ? Number(ttl) : undefined,
    now,
  });
  return plan.retry ? { ...event, retryAt: plan.at } : { ...event, detail: event.detail ?? plan.why };
}

/** A new id for an event the pipeline itself emits. */
export function newEventId(): string {
  return randomUUID();
}

/** One entry of the status stream, as consumers receive it (schema documented in the README). */
export const streamEntrySchema = z.object({
  event_id: z.string(),
  event_type: z.string(),
  fax_id: z.string(),
  telnyx_fax_id: z.string(),
  status: z.string(),
  occurred_at: z.string(),
  attempt: z.coerce.number().int(),
  failure_reason: z.string(),
  final: z.enum(['true', 'false']).transform((value) => value === 'true'),
  direction: z.string(),
  client_state: z.string(),
  payload: z.string().transform((value) => JSON.parse(value) as unknown),
  detail: z.string().optional(),
  /** On a failure the fax is sent again after: when. */
  next_attempt_at: z.string().optional(),
  /** The batch the fax was queued in (one request, many recipients), on every entry of it. */
  batch_id: z.string().optional(),
  /** The caller's tags of the fax (a JSON object in the stream), on every entry of it. */
  tags: z
    .string()
    .transform((value) => JSON.parse(value) as Record<string, string>)
    .optional(),
});

export type StreamEntry = z.infer<typeof streamEntrySchema> & { readonly stream_id: string };

/** Parses a raw XREAD entry (`[id, [field, value, ...]]`). */
export function parseStreamEntry(id: string, flat: readonly string[]): StreamEntry {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i] as string] = flat[i + 1] as string;
  return { stream_id: id, ...streamEntrySchema.parse(record) };
}
