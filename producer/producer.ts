import { createHash, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { applyEvent, type EventObserver, type EventSink, newEventId } from '../shared/events.ts';
import {
  BatchIncompleteError,
  FaxCancelError,
  FaxNotFoundError,
  FaxValidationError,
  IdempotencyKeyError,
  ServiceUnavailableError,
} from '../shared/errors.ts';
import {
  firstSendTime,
  type ParseResult,
  parseSendFaxRequest,
  type SendFaxRequest,
} from '../shared/fax-request.ts';
import { createFaxRecord, type FaxRecord, readFaxRecord } from '../shared/fax-record.ts';
import { FAX_QUEUE, type Keys } from '../shared/keys.ts';
import type { Logger } from '../shared/logger.ts';
import { FAX_JOB_NAME, type FaxJobData, faxJobId, faxJobOptions } from '../shared/queue.ts';
import type { FaxRedis } from '../shared/redis.ts';
import { defaultSlotSettings, type SlotSettings } from '../shared/slots/settings.ts';
import { defaultRetryPolicy, expiresAt, type RetryPolicy } from '../shared/retry-policy.ts';
import { createHandoff } from '../shared/slots/handoff.ts';
import { recipientTimeZone } from '../shared/sending-window.ts';
import { OWN_EVENTS } from '../shared/status.ts';
import type { TelnyxClient } from '../shared/telnyx-client.ts';

export interface ProducerDeps {
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly logger: Logger;
  /** Used when a request leaves `connection_id` / `from` out. */
  readonly defaults?: { readonly connectionId?: string | undefined; readonly from?: string | undefined };
  readonly submitAttempts?: number;
  readonly streamMaxLen?: number;
  /** Channel slot settings (the environment's defaults if left out). */
  readonly slots?: SlotSettings;
  /** The retry policy (the defaults if left out). */
  readonly retryPolicy?: RetryPolicy;
  /** How long an Idempotency-Key is remembered (default a day). */
  readonly idempotencySeconds?: number;
  /** Hosts `media_url` may point at (`*.example.com` for subdomains); left out: any. */
  readonly mediaUrlHosts?: readonly string[] | undefined;
  /** Telnyx, to cancel faxes already there (without it, only faxes still queued can be cancelled). */
  readonly telnyx?: TelnyxClient;
  /** Told of every event the producer records (metrics). */
  readonly observer?: EventObserver;
}

export interface SendOptions {
  /**
   * The same key within the idempotency window gives back the same fax instead of queueing another;
   * the same key with a different request is refused ({@link IdempotencyKeyError}).
   */
  readonly idempotencyKey?: string;
}

export interface BatchView {
  readonly id: string;
  readonly faxIds: readonly string[];
  readonly counts: Readonly<Record<string, number>>;
}

export interface QueuedFax {
  readonly id: string;
  /** The request as stored: validated, with the configured defaults filled in. */
  readonly request: SendFaxRequest;
  readonly queuedAt: Date;
  /** The Idempotency-Key had been used for this fax before: nothing new was queued. */
  readonly replayed: boolean;
}

export interface Producer {
  /** Like {@link Producer.send}, resolving to the stored request as well as the id. */
  queue(fax: Record<string, unknown>, options?: SendOptions): Promise<QueuedFax>;
  /**
   * Validates and queues one fax; resolves to our fax id once it is stored and queued.
   * Throws {@link FaxValidationError} (nothing queued) or {@link ServiceUnavailableError}.
   */
  send(fax: Record<string, unknown>, options?: SendOptions): Promise<string>;
  /** The fax's current state and history; throws {@link FaxNotFoundError}. */
  get(faxId: string): Promise<FaxRecord>;
  /**
   * Cancels a fax: one still queued (or waiting for a retry) is taken out and ends at once
   * (`fax.cancelled`, final); one at Telnyx is cancelled there (its final `fax.failed` with
   * `sender_canceled` follows). Throws {@link FaxNotFoundError} or {@link FaxCancelError}.
   */
  cancel(faxId: string): Promise<{ readonly where: 'queue' | 'telnyx' }>;
  /**
   * One document to many recipients: `to` is a list (1 to 1000 numbers); one fax per recipient, all
   * under one batch id, carried on their stream entries. Throws {@link FaxValidationError} naming
   * each bad recipient (`/to/3`) and field; nothing is queued then. With an idempotency key, the same
   * request again gives back the same batch, storing whatever an interrupted first request had not
   * (each recipient's fax id is derived from the batch id: it is never stored twice).
   */
  queueBatch(
    fax: Record<string, unknown>,
    options?: SendOptions,
  ): Promise<{ readonly batchId: string; readonly faxes: readonly QueuedFax[]; readonly replayed: boolean }>;
  /** A batch's faxes and how many are in each status; throws {@link FaxNotFoundError}. */
  getBatch(batchId: string): Promise<BatchView>;
  close(): Promise<void>;
}

export function createProducer(deps: ProducerDeps): Producer {
  const { redis, keys, logger } = deps;
  const idempotencySeconds = deps.idempotencySeconds ?? 86_400;
  const sink: EventSink = {
    redis,
    keys,
    streamMaxLen: deps.streamMaxLen ?? 1_000_000,
    slots: deps.slots ?? defaultSlotSettings(keys.prefix),
    retryPolicy: deps.retryPolicy ?? defaultRetryPolicy(),
    observer: deps.observer,
  };
  const queue = new Queue<FaxJobData>(FAX_QUEUE, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', (error) => logger.warn({ err: error }, 'queue connection error'));
  const handoff = createHandoff({ queue, redis, keys, logger, submitAttempts: deps.submitAttempts ?? 5 });

  async function cancelFax(faxId: string): Promise<{ where: 'queue' | 'telnyx' }> {
    try {
      return await cancelNow(faxId);
    } catch (error) {
      if (error instanceof FaxNotFoundError || error instanceof FaxCancelError) throw error;
      throw new ServiceUnavailableError(
        'could not cancel the fax now (Redis or Telnyx unavailable); try again',
        {
          cause: error,
        },
      );
    }
  }

  async function cancelNow(faxId: string): Promise<{ where: 'queue' | 'telnyx' }> {
    const [status, telnyxFaxId] = await redis.hmget(keys.fax(faxId), 'status', 'telnyx_fax_id');
    if (!status) throw new FaxNotFoundError(faxId);
    if (status === 'delivered' || status === 'failed') {
      throw new FaxCancelError('finished', `The fax has ended (${status}); it cannot be cancelled.`);
    }
    if (status === 'queued') {
      // Atomic with the claim script: a fax whose POST is under way is not cancelled here.
      const result = await applyEvent(sink, {
        eventId: newEventId(),
        eventType: OWN_EVENTS.cancelled,
        faxId,
        status: 'failed',
        failureReason: 'sender_canceled',
        detail: 'cancelled before it was sent',
        occurredAt: new Date().toISOString(),
        direction: 'outbound',
        payload: {},
        dedupe: false,
        onlyIfNotSubmitting: true,
      });
      if (result.outcome !== 'refused') {
        await handoff.after(result);
        // Its job would only find the fax ended; take it out of the queue now (one that a worker
        // holds, or that has gone, is left alone).
        await queue.remove(faxJobId(faxId, result.attempt)).catch(() => 0);
        logger.info({ faxId }, 'fax cancelled before it was sent');
        return { where: 'queue' };
      }
      if (result.status !== 'queued') return cancelNow(faxId);
      throw new FaxCancelError('busy', 'The fax is being sent to Telnyx; try again in a moment.');
    }
    if (!deps.telnyx || !telnyxFaxId) {
      throw new FaxCancelError('busy', 'The fax is on its way to Telnyx; try again in a moment.');
    }
    if ((await deps.telnyx.cancelFax(telnyxFaxId)) !== 'cancelled') {
      throw new FaxCancelError('finished', 'Telnyx says the fax can no longer be cancelled.');
    }
    logger.info({ faxId, telnyxFaxId }, 'fax cancelled at Telnyx');
    return { where: 'telnyx' };
  }

  /** The request with its defaults, checked field by field and against FAX_MEDIA_URL_HOSTS. */
  async function validate(fax: Record<string, unknown>): Promise<ParseResult> {
    const parsed = parseSendFaxRequest(withDefaults(fax));
    if (!parsed.ok) return parsed;
    const window = parsed.fax.sending_window;
    if (window !== undefined && window.time_zone === undefined) {
      // Stored with its zone: the worker never has to guess, and a later data update changes nothing.
      const zone = await recipientTimeZone(parsed.fax.to, window);
      if (!zone.ok)
        return { ok: false, problems: [{ pointer: '/sending_window/time_zone', detail: zone.detail }] };
      parsed.fax.sending_window = { ...window, time_zone: zone.zone };
    }
    if (window !== undefined) {
      const now = Date.now();
      const due = parsed.fax.send_at ? Date.parse(parsed.fax.send_at) : now;
      const opens = firstSendTime(parsed.fax, now);
      const expires = expiresAt(sink.retryPolicy, due, parsed.fax.ttl_seconds);
      if (opens > expires) {
        const detail = `sending_window opens at ${new Date(opens).toISOString()}, after the fax's time-to-live ends (${new Date(expires).toISOString()})`;
        return { ok: false, problems: [{ pointer: '/sending_window', detail }] };
      }
    }
    const host = parsed.fax.media_url ? new URL(parsed.fax.media_url).hostname.toLowerCase() : undefined;
    if (host !== undefined && deps.mediaUrlHosts && !hostAllowed(host, deps.mediaUrlHosts)) {
      return {
        ok: false,
        problems: [
          { pointer: '/media_url', detail: `media_url may not point at ${host} (FAX_MEDIA_URL_HOSTS)` },
        ],
      };
    }
    return parsed;
  }

  function withDefaults(fax: Record<string, unknown>): Record<string, unknown> {
    const out = { ...fax };
    if (out.connection_id === undefined && deps.defaults?.connectionId !== undefined) {
      out.connection_id = deps.defaults.connectionId;
    }
    if (out.from === undefined && deps.defaults?.from !== undefined) out.from = deps.defaults.from;
    return out;
  }

  /**
   * Stores the fax (record, `fax.enqueued`, outbox entry: one atomic step). Once stored, the fax will
   * be sent: its job is queued by {@link queueJobs}, or, if that fails, by the slot keeper from the
   * outbox. Resolves to false when a fax with this id exists already.
   */
  async function store(
    faxId: string,
    request: SendFaxRequest,
    queuedAt: Date,
    batchId?: string,
  ): Promise<boolean> {
    const enqueued = {
      eventId: newEventId(),
      eventType: OWN_EVENTS.enqueued,
      faxId,
      status: 'queued' as const,
      occurredAt: queuedAt.toISOString(),
      direction: 'outbound' as const,
      payload: { to: request.to, from: request.from, connection_id: request.connection_id },
      dedupe: false,
    };
    return createFaxRecord(sink, faxId, request, enqueued, queuedAt, batchId);
  }

  /**
   * Queues the first job of stored faxes (one BullMQ call for all) and clears their outbox entries. A
   * failure here loses nothing: the slot keeper queues what the outbox still holds.
   */
  async function queueJobs(faxes: readonly { id: string; request: SendFaxRequest }[]): Promise<void> {
    const jobOptions = (faxId: string, request: SendFaxRequest) => ({
      ...faxJobOptions(faxId, deps.submitAttempts ?? 5, 1000 * sink.retryPolicy.scale),
      delay: Math.max(0, firstSendTime(request, Date.now()) - Date.now()),
    });
    try {
      if (faxes.length === 1) {
        const [{ id, request }] = faxes as [{ id: string; request: SendFaxRequest }];
        await queue.add(FAX_JOB_NAME, { faxId: id }, jobOptions(id, request));
      } else {
        await queue.addBulk(
          faxes.map(({ id, request }) => ({
            name: FAX_JOB_NAME,
            data: { faxId: id },
            opts: jobOptions(id, request),
          })),
        );
      }
      await redis.zrem(keys.slots.outbox, ...faxes.map((fax) => fax.id));
    } catch (error) {
      logger.warn(
        { err: error, faxIds: faxes.map((fax) => fax.id) },
        'fax stored but not queued yet; the slot keeper will queue it',
      );
    }
  }

  /** The fax as it is, for an answer to a request that found it already stored. */
  async function replayOf(faxId: string): Promise<QueuedFax> {
    const record = await readFaxRecord(redis, keys, faxId);
    if (!record) throw new Error(`fax ${faxId} vanished`);
    return { id: faxId, request: record.request, queuedAt: new Date(record.createdAt), replayed: true };
  }

  /**
   * Claims the key for a new fax id, or finds the fax that has it. Resolves to the id to create, or to
   * the earlier fax (replayed) when it exists.
   */
  async function claimKey(
    key: string,
    request: SendFaxRequest,
  ): Promise<{ faxId: string; replay?: QueuedFax }> {
    checkKey(key);
    const fingerprint = fingerprintOf(request);
    const claim = async (takeOverFrom = '') =>
      (await redis.claimIdempotency(
        keys.idempotency(key),
        randomUUID(),
        fingerprint,
        idempotencySeconds,
        Date.now(),
        takeOverFrom,
      )) as [number, string, string, string];
    const [claimed, faxId, earlierFingerprint, claimedAt] = await claim();
    if (claimed === 1) return { faxId };
    if (earlierFingerprint !== fingerprint) {
      throw new IdempotencyKeyError(
        'reused',
        'This Idempotency-Key was used for a different request; use a new key for a new fax.',
      );
    }
    if (await redis.exists(keys.fax(faxId))) return { faxId, replay: await replayOf(faxId) };
    // Claimed, never stored: its request is still being stored, or died before it was. Only one
    // caller takes an old claim over.
    if (Date.now() - Number(claimedAt) >= ORPHAN_CLAIM_MS && (await claim(claimedAt))[0] === 1) {
      return { faxId };
    }
    throw new IdempotencyKeyError(
      'in-progress',
      'A request with this Idempotency-Key is in progress; try again.',
    );
  }

  /**
   * Claims the key for a new batch, or finds the batch that has it (same requests, else refused).
   * Batches need no in-progress state: two requests storing the same batch store each fax once.
   */
  async function claimBatchKey(
    key: string,
    requests: readonly SendFaxRequest[],
    newBatchId: string,
  ): Promise<{ batchId: string; replayed: boolean }> {
    checkKey(key);
    const fingerprint = fingerprintOf({ batch: requests });
    const [claimed, batchId, earlierFingerprint] = (await redis.claimIdempotency(
      keys.idempotency(key),
      newBatchId,
      fingerprint,
      idempotencySeconds,
      Date.now(),
      '',
    )) as [number, string, string, string];
    if (claimed !== 1 && earlierFingerprint !== fingerprint) {
      throw new IdempotencyKeyError(
        'reused',
        'This Idempotency-Key was used for a different request; use a new key for a new batch.',
      );
    }
    return { batchId, replayed: claimed !== 1 };
  }

  async function queueFax(fax: Record<string, unknown>, options: SendOptions = {}): Promise<QueuedFax> {
    const parsed = await validate(fax);
    if (!parsed.ok) throw new FaxValidationError(parsed.problems);
    const queuedAt = new Date();
    let faxId: string = randomUUID();
    try {
      if (options.idempotencyKey !== undefined) {
        const claim = await claimKey(options.idempotencyKey, parsed.fax);
        if (claim.replay) return claim.replay;
        faxId = claim.faxId;
      }
      // Another request with the same key stored it meanwhile: that fax is the answer.
      if (!(await store(faxId, parsed.fax, queuedAt))) return await replayOf(faxId);
      await queueJobs([{ id: faxId, request: parsed.fax }]);
    } catch (error) {
      if (error instanceof IdempotencyKeyError) throw error;
      throw new ServiceUnavailableError('could not queue the fax: Redis is unavailable', { cause: error });
    }
    logger.info({ faxId, to: parsed.fax.to }, 'fax queued');
    return { id: faxId, request: parsed.fax, queuedAt, replayed: false };
  }

  return {
    queue: queueFax,
    async send(fax, options) {
      return (await queueFax(fax, options)).id;
    },
    async get(faxId) {
      let record: FaxRecord | undefined;
      try {
        record = await readFaxRecord(redis, keys, faxId);
      } catch (error) {
        throw new ServiceUnavailableError('could not read the fax: Redis is unavailable', { cause: error });
      }
      if (!record) throw new FaxNotFoundError(faxId);
      return record;
    },
    cancel: cancelFax,
    async queueBatch(fax, options = {}) {
      const recipients = fax.to;
      if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > 1000) {
        throw new FaxValidationError([
          { pointer: '/to', detail: 'to must be a number, or a list of 1 to 1000' },
        ]);
      }
      // Every recipient checked before anything is stored: a bad one queues nothing.
      const problems = new Map<string, string>();
      const requests: SendFaxRequest[] = [];
      for (const [i, to] of recipients.entries()) {
        const parsed = await validate({ ...fax, to });
        if (parsed.ok) requests.push(parsed.fax);
        else
          for (const p of parsed.problems)
            problems.set(p.pointer === '/to' ? `/to/${i}` : p.pointer, p.detail);
      }
      if (problems.size > 0) {
        throw new FaxValidationError([...problems].map(([pointer, detail]) => ({ pointer, detail })));
      }
      let batchId: string = randomUUID();
      let replayed = false;
      const queuedAt = new Date();
      const faxes: QueuedFax[] = [];
      // Jobs go in bulk, a chunk at a time, so workers can start on a large batch while it is stored.
      let queued = 0;
      // Faxes this request stored (an earlier one with the same key queued the others).
      const fresh: { id: string; request: SendFaxRequest }[] = [];
      const queueStored = async () => {
        if (queued === fresh.length) return;
        await queueJobs(fresh.slice(queued));
        queued = fresh.length;
      };
      try {
        if (options.idempotencyKey !== undefined) {
          const claim = await claimBatchKey(options.idempotencyKey, requests, batchId);
          batchId = claim.batchId;
          replayed = claim.replayed;
        }
        for (const [i, request] of requests.entries()) {
          const faxId =
            replayed || options.idempotencyKey !== undefined ? batchFaxId(batchId, i) : randomUUID();
          if (await store(faxId, request, queuedAt, batchId)) {
            faxes.push({ id: faxId, request, queuedAt, replayed: false });
            fresh.push({ id: faxId, request });
          } else faxes.push(await replayOf(faxId));
          if (fresh.length - queued >= BATCH_JOB_CHUNK) await queueStored();
        }
        await queueStored();
      } catch (error) {
        if (error instanceof IdempotencyKeyError) throw error;
        // Stored is as good as queued (the slot keeper queues what the outbox holds); try now anyway.
        await queueStored();
        if (faxes.length === 0) {
          throw new ServiceUnavailableError('could not queue the batch: Redis is unavailable', {
            cause: error,
          });
        }
        // Those stored will be sent: say so, so that they are not sent again.
        throw new BatchIncompleteError(batchId, faxes.length, requests.length, { cause: error });
      }
      logger.info({ batchId, faxes: faxes.length, replayed }, 'batch queued');
      return { batchId, faxes, replayed };
    },
    async getBatch(batchId) {
      const faxIds = await redis.smembers(keys.batch(batchId));
      if (faxIds.length === 0) throw new FaxNotFoundError(batchId);
      const pipe = redis.pipeline();
      for (const faxId of faxIds) pipe.hget(keys.fax(faxId), 'status');
      const counts: Record<string, number> = {};
      for (const [, status] of (await pipe.exec()) ?? []) {
        counts[String(status)] = (counts[String(status)] ?? 0) + 1;
      }
      return { id: batchId, faxIds: faxIds.sort(), counts };
    },
    async close() {
      await queue.close();
    },
  };
}

function checkKey(key: string): void {
  if (key.length === 0 || key.length > 255 || !/^[\x20-\x7e]+$/.test(key)) {
    throw new IdempotencyKeyError('invalid', 'Idempotency-Key must be 1 to 255 printable ASCII characters.');
  }
}

/** The fax id of a batch's `index`th recipient: the same every time the batch is stored. */
function batchFaxId(batchId: string, index: number): string {
  const hex = createHash('sha256').update(`${batchId}/${index}`).digest('hex');
  // Shaped as a UUID (version 8: custom) so it looks like every other fax id.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** A batch's jobs are queued in chunks of this many (one BullMQ call each). */
const BATCH_JOB_CHUNK = 100;

/** A claim whose fax was never stored is taken over after this long (its request died). */
const ORPHAN_CLAIM_MS = 30_000;

/** The same request, whatever the order of its fields (tags included), gives the same fingerprint. */
function fingerprintOf(request: unknown): string {
  const canonical = (value: unknown): unknown =>
    value === null || typeof value !== 'object' || Array.isArray(value)
      ? value
      : Object.fromEntries(
          Object.entries(value)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([k, v]) => [k, canonical(v)]),
        );
  return createHash('sha256')
    .update(JSON.stringify(canonical(request)))
    .digest('hex');
}

function hostAllowed(host: string, allowed: readonly string[]): boolean {
  return allowed.some((pattern) =>
    pattern.startsWith('*.')
      ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
      : host === pattern,
  );
}
