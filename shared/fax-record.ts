import { applyEventArgs, type EventSink, type FaxEvent } from './events.ts';
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
 * Writes a new fax record and its `fax.enqueued` event in one transaction; the caller then hands the
 * fax to the queue. Fields kept: the request as the caller sent it (after defaults) and its state.
 */
export async function createFaxRecord(
  sink: EventSink,
  faxId: string,
  request: SendFaxRequest,
  enqueued: FaxEvent,
  createdAt: Date,
): Promise<void> {
  const { redis, keys } = sink;
  const now = createdAt.getTime();
  const transaction = redis.multi();
  transaction.hset(keys.fax(faxId), {
    id: faxId,
    status: 'queued',
    rank: statusRank('queued'),
    attempt: 1,
    request: JSON.stringify(request),
    client_state: request.client_state ?? '',
    created_at: now,
    updated_at: now,
  });
  // The record exists before the script runs, so `fax.enqueued` is recorded against it.
  (transaction as unknown as FaxRedis).applyEvent(...applyEventArgs(sink, { ...enqueued, attempt: 1 }));
  const results = await transaction.exec();
  const failed = results?.find(([error]) => error !== null);
  if (!results || failed) throw failed?.[0] ?? new Error('fax record transaction aborted');
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
