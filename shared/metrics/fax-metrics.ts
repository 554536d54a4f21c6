import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EventObserver } from '../events.ts';
import { withTimeout } from '../with-timeout.ts';
import type { Queue } from 'bullmq';
import { openQueues, type RedisState, type RedisStateSource, readRedisState } from './redis-state.ts';

/** What one run of a fax job came to (worker/dispatch-fax.ts). */
export const DISPATCH_RESULTS = [
  'submitted',
  'found',
  'rejected',
  'retry',
  'uncertain',
  'failed',
  'expired',
  'parked',
  'scheduled',
  'moved_on',
  'handed_back',
  'superseded',
] as const;
export type DispatchResult = (typeof DISPATCH_RESULTS)[number];

/** What one `POST /v2/faxes` came to: `uncertain` may have created the fax (5xx, timeout). */
export const POST_OUTCOMES = ['accepted', 'rejected', 'rate_limited', 'failed', 'uncertain'] as const;
export type PostOutcome = (typeof POST_OUTCOMES)[number];

/** What the webhook service answered: 2xx for `ok` and `duplicate`, 401, 400/413, 503. */
export const WEBHOOK_OUTCOMES = ['ok', 'duplicate', 'bad_signature', 'invalid', 'unavailable'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

/**
 * One process's metrics, in a registry of its own (every service started from one runtime shares it).
 * Counters and histograms count what this process did; Prometheus sums them over processes. Each
 * fax's outcome and latencies are observed by the one process whose event recorded them
 * (shared/events.ts `applyEvent` reports each transition once), so nothing is counted twice. Gauges
 * of shared state (queue, channel slots, stream) are read from Redis at scrape time.
 */
export interface FaxMetrics extends EventObserver {
  readonly registry: Registry;
  dispatched(result: DispatchResult): void;
  posted(outcome: PostOutcome): void;
  webhook(outcome: WebhookOutcome): void;
  /**
   * Reads the shared state through this connection at scrape time, with the pipeline's queues opened
   * on it (also for the dashboard), until `close()` (which closes the queues; the connection stays the
   * caller's).
   */
  watchRedisState(source: Omit<RedisStateSource, 'queues'>): WatchedState;
}

export interface WatchedState {
  readonly queues: readonly Queue[];
  close(): Promise<void>;
}

/** A scrape waits no longer than this for Redis. */
const STATE_TIMEOUT_MS = 2000;

export function createFaxMetrics(): FaxMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const queued = new Counter({
    name: 'fax_queued_total',
    help: 'Faxes stored and queued by the producer.',
    registers,
  });
  const dispatches = new Counter({
    name: 'fax_dispatches_total',
    help: 'Runs of fax jobs by what they came to (submitted, parked for a channel, handed back, ...).',
    labelNames: ['result'],
    registers,
  });
  const posts = new Counter({
    name: 'fax_telnyx_posts_total',
    help: 'POST /v2/faxes requests by outcome (uncertain: may have created the fax; asked about before any resend).',
    labelNames: ['outcome'],
    registers,
  });
  const webhooks = new Counter({
    name: 'fax_webhooks_total',
    help: 'Telnyx webhooks received by outcome.',
    labelNames: ['outcome'],
    registers,
  });
  const delivered = new Counter({
    name: 'fax_delivered_total',
    help: 'Faxes delivered (final).',
    registers,
  });
  const failed = new Counter({
    name: 'fax_failed_total',
    help: 'Faxes that ended failed (final), by failure_reason.',
    labelNames: ['failure_reason'],
    registers,
  });
  const retries = new Counter({
    name: 'fax_retries_total',
    help: 'Failed attempts queued again as a next attempt, by failure_reason.',
    labelNames: ['failure_reason'],
    registers,
  });
  for (const result of DISPATCH_RESULTS) dispatches.inc({ result }, 0);
  for (const outcome of POST_OUTCOMES) posts.inc({ outcome }, 0);
  for (const outcome of WEBHOOK_OUTCOMES) webhooks.inc({ outcome }, 0);

  const queuedToSubmitted = new Histogram({
    name: 'fax_queued_to_submitted_seconds',
    help: "From when an attempt was due (queued, send_at, or its retry time) to Telnyx's 202.",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers,
  });
  const submittedToFinal = new Histogram({
    name: 'fax_submitted_to_final_seconds',
    help: "From Telnyx's 202 to the fax's final status (the call), by status.",
    labelNames: ['status'],
    buckets: [0.1, 0.5, 1, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800],
    registers,
  });
  const queuedToFinal = new Histogram({
    name: 'fax_queued_to_final_seconds',
    help: 'From when a fax was first due to its final status, over all its attempts, by status.',
    labelNames: ['status'],
    buckets: [0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 172800],
    registers,
  });

  // Shared state, read once per scrape (every gauge's collect() runs at once and shares the read).
  // One read at a time: a scrape that gave up on a slow Redis leaves its read to finish, and the
  // next scrape waits on that read rather than piling another onto the service's connection.
  const sources: RedisStateSource[] = [];
  let reading: Promise<RedisState> | undefined;
  const state = (): Promise<RedisState | undefined> => {
    const source = sources.at(-1);
    if (source === undefined) return Promise.resolve(undefined);
    reading ??= readRedisState(source).finally(() => {
      reading = undefined;
    });
    return withTimeout(reading, STATE_TIMEOUT_MS, 'no answer from Redis').catch(() => undefined);
  };
  const stateGauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (gauge: Gauge<L>, state: RedisState) => void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const read = await state();
        this.reset();
        if (read) fill(this, read);
      },
    });

  new Gauge({
    name: 'fax_redis_up',
    help: 'Whether this process could read the shared state from Redis at this scrape (1) or not (0).',
    registers,
    async collect() {
      this.reset();
      if (sources.length > 0) this.set((await state()) ? 1 : 0);
    },
  });
  stateGauge(
    'fax_queue_jobs',
    'BullMQ jobs by queue and state (delayed includes faxes waiting for a channel or a retry).',
    ['queue', 'state'],
    (g, s) => {
      for (const [queue, counts] of Object.entries(s.jobs)) {
        for (const [state, count] of Object.entries(counts)) g.set({ queue, state }, count);
      }
    },
  );
  stateGauge('fax_in_flight', 'Faxes accepted by Telnyx that have not ended.', [], (g, s) =>
    g.set(s.inFlight),
  );
  stateGauge(
    'fax_channel_limit',
    'Channel limit enforced now, per scope (absent: no limit; destination: per number).',
    ['scope'],
    (g, s) => {
      for (const scope of s.scopes) if (scope.limit !== undefined) g.set({ scope: scope.scope }, scope.limit);
    },
  );
  stateGauge(
    'fax_channels_in_flight',
    'Channel slots held, per scope (destination: all numbers together).',
    ['scope'],
    (g, s) => {
      for (const scope of s.scopes) g.set({ scope: scope.scope }, scope.inFlight);
    },
  );
  stateGauge(
    'fax_channels_waiting',
    'Faxes waiting in line for a channel slot, per scope.',
    ['scope'],
    (g, s) => {
      for (const scope of s.scopes) g.set({ scope: scope.scope }, scope.waiting);
    },
  );
  stateGauge('fax_stream_length', 'Entries in the status stream.', [], (g, s) => g.set(s.streamLength));
  stateGauge('fax_stream_dead_letters', 'Entries in the dead-letter stream.', [], (g, s) =>
    g.set(s.deadLetters),
  );
  stateGauge(
    'fax_stream_group_lag',
    'Stream entries a consumer group has not been handed yet.',
    ['group'],
    (g, s) => {
      for (const group of s.groups) if (group.lag !== undefined) g.set({ group: group.group }, group.lag);
    },
  );
  stateGauge(
    'fax_stream_group_pending',
    'Stream entries handed to a consumer of the group and not acknowledged.',
    ['group'],
    (g, s) => {
      for (const group of s.groups) g.set({ group: group.group }, group.pending);
    },
  );

  return {
    registry,
    dispatched: (result) => dispatches.inc({ result }),
    posted: (outcome) => posts.inc({ outcome }),
    webhook: (outcome) => webhooks.inc({ outcome }),
    watchRedisState(watched) {
      const source: RedisStateSource = { ...watched, queues: openQueues(watched.redis, watched.keys) };
      sources.push(source);
      return {
        queues: source.queues,
        async close() {
          const at = sources.indexOf(source);
          if (at >= 0) sources.splice(at, 1);
          for (const queue of source.queues) await queue.close();
        },
      };
    },
    applied(event, result) {
      if (event.createRecord && (result.outcome === 'applied' || result.outcome === 'published'))
        queued.inc();
      const { firstDue, attemptDue, submittedAt, recordedAt } = result.times;
      if (recordedAt <= 0) return;
      const since = (moment: number) => Math.max(0, recordedAt - moment) / 1000;
      if (result.outcome === 'applied' && result.status === 'submitted' && attemptDue > 0) {
        queuedToSubmitted.observe(since(attemptDue));
      }
      const failureReason = event.failureReason || 'unknown';
      if (result.requeuedAttempt !== undefined) retries.inc({ failure_reason: failureReason });
      if (!result.final) return;
      const status = result.status;
      if (status === 'delivered') delivered.inc();
      else failed.inc({ failure_reason: failureReason });
      if (firstDue > 0) queuedToFinal.observe({ status }, since(firstDue));
      if (submittedAt > 0) submittedToFinal.observe({ status }, since(submittedAt));
    },
  };
}
