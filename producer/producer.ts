import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { applyEvent, type EventSink, newEventId } from '../shared/events.ts';
import { FaxNotFoundError, FaxValidationError, ServiceUnavailableError } from '../shared/errors.ts';
import { parseSendFaxRequest, type SendFaxRequest } from '../shared/fax-request.ts';
import { createFaxRecord, type FaxRecord, readFaxRecord } from '../shared/fax-record.ts';
import { FAX_QUEUE, type Keys } from '../shared/keys.ts';
import type { Logger } from '../shared/logger.ts';
import { FAX_JOB_NAME, type FaxJobData, faxJobOptions } from '../shared/queue.ts';
import type { FaxRedis } from '../shared/redis.ts';
import { defaultSlotSettings, type SlotSettings } from '../shared/slots/settings.ts';
import { defaultRetryPolicy, type RetryPolicy } from '../shared/retry-policy.ts';
import { OWN_EVENTS } from '../shared/status.ts';

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
}

export interface QueuedFax {
  readonly id: string;
  /** The request as stored: validated, with the configured defaults filled in. */
  readonly request: SendFaxRequest;
  readonly queuedAt: Date;
}

export interface Producer {
  /** Like {@link Producer.send}, resolving to the stored request as well as the id. */
  queue(fax: Record<string, unknown>): Promise<QueuedFax>;
  /**
   * Validates and queues one fax; resolves to our fax id once it is stored and queued.
   * Throws {@link FaxValidationError} (nothing queued) or {@link ServiceUnavailableError}.
   */
  send(fax: Record<string, unknown>): Promise<string>;
  /** The fax's current state and history; throws {@link FaxNotFoundError}. */
  get(faxId: string): Promise<FaxRecord>;
  close(): Promise<void>;
}

export function createProducer(deps: ProducerDeps): Producer {
  const { redis, keys, logger } = deps;
  const sink: EventSink = {
    redis,
    keys,
    streamMaxLen: deps.streamMaxLen ?? 1_000_000,
    slots: deps.slots ?? defaultSlotSettings(keys.prefix),
    retryPolicy: deps.retryPolicy ?? defaultRetryPolicy(),
  };
  const queue = new Queue<FaxJobData>(FAX_QUEUE, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', (error) => logger.warn({ err: error }, 'queue connection error'));

  function withDefaults(fax: Record<string, unknown>): Record<string, unknown> {
    const out = { ...fax };
    if (out.connection_id === undefined && deps.defaults?.connectionId !== undefined) {
      out.connection_id = deps.defaults.connectionId;
    }
    if (out.from === undefined && deps.defaults?.from !== undefined) out.from = deps.defaults.from;
    return out;
  }

  async function store(faxId: string, request: SendFaxRequest, queuedAt: Date): Promise<void> {
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
    // Record first, queue second: a failure in between leaves a fax that is never sent (and is
    // marked failed below), never one that is sent while its caller was told it failed.
    await createFaxRecord(sink, faxId, request, enqueued, queuedAt);
    try {
      await queue.add(FAX_JOB_NAME, { faxId }, faxJobOptions(faxId, deps.submitAttempts ?? 5));
    } catch (error) {
      await applyEvent(sink, {
        eventId: newEventId(),
        eventType: OWN_EVENTS.failed,
        faxId,
        status: 'failed',
        occurredAt: new Date().toISOString(),
        failureReason: 'enqueue_failed',
        direction: 'outbound',
        payload: {},
        dedupe: false,
      }).catch(() => undefined);
      throw error;
    }
  }

  async function queueFax(fax: Record<string, unknown>): Promise<QueuedFax> {
    const parsed = parseSendFaxRequest(withDefaults(fax));
    if (!parsed.ok) throw new FaxValidationError(parsed.problems);
    const faxId = randomUUID();
    const queuedAt = new Date();
    try {
      await store(faxId, parsed.fax, queuedAt);
    } catch (error) {
      throw new ServiceUnavailableError('could not queue the fax: Redis is unavailable', { cause: error });
    }
    logger.info({ faxId, to: parsed.fax.to }, 'fax queued');
    return { id: faxId, request: parsed.fax, queuedAt };
  }

  return {
    queue: queueFax,
    async send(fax) {
      return (await queueFax(fax)).id;
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
    async close() {
      await queue.close();
    },
  };
}
