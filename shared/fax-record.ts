import { applyEvent, type EventSink, type FaxEvent } from './events.ts';
import type { SendFaxRequest } from './fax-request.ts';
import type { Keys } from './keys.ts';
import type { FaxRedis } from './redis.ts';
import { type FaxStatus, statusRank } from './status.ts';

/** What Redis holds for one fax (hash at `keys.fax(id)`). */
export interface FaxRecord {
  readonly id: string;
  readonly status: FaxStatus;
  readonly attempt: number;
  readonly request: SendFaxRequest;
  readonly telnyxFaxId: string | undefined;
  readonly failureReason: string | undefined;
  readonly detail: string | undefined;
  /** While queued for another attempt after a failure: when it is due, and what failed. */
  readonly nextAttemptAt: string | undefined;
  readonly lastFailureReason: string | undefined;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly history: readonly HistoryItem[];
}

export interface HistoryItem {
  readonly stream_id: string;
  readonly event_id: string;
  readonly event_type: string;
  readonly status: string;
  readonly occurred_at: string;
  readonly attempt: number;
  readonly failure_reason?: string;
  readonly final: boolean;
  readonly next_attempt_at?: string;
}

/**
 * Writes a new fax record, its `fax.enqueued` event and an outbox entry for its first job in one
 * atomic step (apply-event.lua): once this resolves, the fax will be sent even if the caller dies
 * before queueing the job (the slot keeper queues it). Resolves to false, writing nothing, when a
 * record with this id exists already. Fields kept: the request as the caller sent it (after defaults)
 * and its state.
 */
export async function createFaxRecord(
  sink: EventSink,
  faxId: string,
  request: SendFaxRequest,
  enqueued: FaxEvent,
  createdAt: Date,
  batchId?: string,
): Promise<boolean> {
  const now = String(createdAt.getTime());
  const result = await applyEvent(sink, {
    ...enqueued,
    attempt: 1,
    createRecord: {
      id: faxId,
      status: 'queued',
      rank: String(statusRank('queued')),
      attempt: '1',
      request: JSON.stringify(request),
      client_state: request.client_state ?? '',
      tags: request.tags ? JSON.stringify(request.tags) : '',
      due_at: request.send_at ? String(Date.parse(request.send_at)) : '',
      ttl_seconds: request.ttl_seconds === undefined ? '' : String(request.ttl_seconds),
      batch_id: batchId ?? '',
      created_at: now,
      updated_at: now,
    },
  });
  return result.outcome !== 'exists';
}

const iso = (millis: string | undefined) => new Date(Number(millis ?? 0)).toISOString();
const orUndefined = (value: string | undefined) => (value === undefined || value === '' ? undefined : value);

/** Reads one fax with its ordered history; undefined when the id is unknown. */
export async function readFaxRecord(
  redis: FaxRedis,
  keys: Keys,
  faxId: string,
): Promise<FaxRecord | undefined> {
  const [[, hash], [, history]] = (await redis
    .multi()
    .hgetall(keys.fax(faxId))
    .lrange(keys.faxHistory(faxId), 0, -1)
    .exec()) as [[null, Record<string, string>], [null, string[]]];
  if (!hash || hash.id === undefined) return undefined;
  return {
    id: faxId,
    status: hash.status as FaxStatus,
    attempt: Number(hash.attempt ?? 1),
    request: JSON.parse(hash.request ?? '{}') as SendFaxRequest,
    telnyxFaxId: orUndefined(hash.telnyx_fax_id),
    failureReason: orUndefined(hash.failure_reason),
    detail: orUndefined(hash.detail),
    nextAttemptAt: hash.status === 'queued' && hash.next_attempt_at ? iso(hash.next_attempt_at) : undefined,
    lastFailureReason: orUndefined(hash.last_failure_reason),
    createdAt: iso(hash.created_at),
    updatedAt: iso(hash.updated_at),
    history: history.map((item) => JSON.parse(item) as HistoryItem),
  };
}
