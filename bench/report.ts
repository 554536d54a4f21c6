import type { EnqueueResult } from './enqueue.ts';
import type { LatencyResult } from './latency.ts';
import type { Pair, Sample } from './measure.ts';
import type { MemoryResult } from './memory.ts';
import type { ThroughputResult } from './throughput.ts';
import type { UtilizationResult } from './utilization.ts';
import type { WebhookResult } from './webhook-ingest.ts';

/** What one run of `npm run bench` measured; a scenario left out (BENCH_ONLY) is absent. */
export interface BenchFigures {
  readonly utilization?: UtilizationResult;
  readonly dispatch?: ThroughputResult;
  readonly enqueue?: EnqueueResult;
  readonly webhook?: WebhookResult;
  readonly latency?: LatencyResult;
  readonly memory?: MemoryResult;
}

export interface BenchMeta {
  /** ISO 8601. */
  readonly measuredAt: string;
  readonly durationSeconds: number;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryGb: number;
    readonly node: string;
    readonly redis: string;
  };
  /** 1-minute load averages when the run began and ended. */
  readonly loadAverage: { readonly start: number; readonly end: number };
  /** Share of the machine's CPU in use (by anything else) over a few seconds right before the run. */
  readonly cpuInUseBefore: number;
  /** The knobs the run used (BENCH_* environment variables, or their defaults). */
  readonly knobs: Readonly<Record<string, number | string>>;
}

export interface Goal {
  readonly goal: string;
  /** The measured value, in the unit of `target`. */
  readonly value: number;
  readonly target: number;
  readonly kind: 'at-least' | 'at-most';
  readonly met: boolean;
  /** The value as the report shows it. */
  readonly measured: string;
}

export interface Row {
  readonly measure: string;
  readonly ours: string;
  readonly baseline: string;
  /** Ours as a share of the baseline, or '—'. */
  readonly ratio: string;
}

export interface Report {
  readonly meta: BenchMeta;
  readonly goals: readonly Goal[];
  readonly rows: readonly Row[];
  /** What each item cost: CPU of the process doing the work and of Redis, Redis commands. */
  readonly costs: readonly Row[];
  /** Why each goal not met falls short, from the figures. */
  readonly bounds: readonly string[];
  readonly figures: BenchFigures;
}

export const num = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a';
const pct = (value: number) => (Number.isFinite(value) ? `${(value * 100).toFixed(1)} %` : 'n/a');
const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : 'n/a');
const mb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(0)} MB` : 'n/a');
const ratioOf = (ours: number, baseline: number) => (baseline > 0 ? ours / baseline : Number.NaN);

function goal(text: string, value: number, target: number, kind: Goal['kind'], measured: string): Goal {
  const met = Number.isFinite(value) && (kind === 'at-least' ? value >= target : value <= target);
  return { goal: text, value, target, kind, met, measured };
}

const rateRow = (measure: string, pair: Pair, unit: string): Row => ({
  measure,
  ours: `${num(pair.ours.perSecond)} ${unit}`,
  baseline: `${num(pair.baseline.perSecond)} ${unit}`,
  ratio: pct(ratioOf(pair.ours.perSecond, pair.baseline.perSecond)),
});

const costOf = (sample: Sample) =>
  `${num(sample.cpuUs)} µs CPU, Redis ${num(sample.redisCpuUs)} µs, ${num(sample.redisCommands, 1)} commands (${num(sample.commandsByName.evalsha ?? 0, 1)} scripts)`;

const costRow = (measure: string, ours: Sample, baseline: Sample): Row => ({
  measure,
  ours: costOf(ours),
  baseline: costOf(baseline),
  ratio: pct(ratioOf(ours.cpuUs + ours.redisCpuUs, baseline.cpuUs + baseline.redisCpuUs)),
});

const ENQUEUE_KINDS = [
  ['single', 'one call at a time: `producer.queue()` vs `queue.add()`'],
  ['concurrent', 'calls in flight: `producer.queue()` vs `queue.add()`'],
  ['batch', '`queueBatch()` vs `queue.addBulk()`'],
  ['http', '`POST /v2/faxes` vs bare Koa + `queue.add()`'],
] as const;

/** The report of one run: goals judged, tables and explanations built from the figures. */
export function buildReport(figures: BenchFigures, meta: BenchMeta): Report {
  const goals: Goal[] = [];
  const rows: Row[] = [];
  const costs: Row[] = [];
  const bounds: string[] = [];
  const { utilization, dispatch, enqueue, webhook, latency, memory } = figures;

  if (webhook) {
    const share = ratioOf(webhook.ours.perSecond, webhook.bareKoaVerify.perSecond);
    goals.push(
      goal(
        'webhook ingestion ≥ 60 % of a bare Koa handler that checks the signature',
        share,
        0.6,
        'at-least',
        pct(share),
      ),
    );
    rows.push({
      ...rateRow(
        'webhook ingestion vs bare Koa + signature check (the ceiling)',
        { ours: webhook.ours, baseline: webhook.bareKoaVerify },
        '/s',
      ),
    });
    rows.push(
      rateRow(
        'webhook ingestion vs bare Koa (no check)',
        { ours: webhook.ours, baseline: webhook.bareKoa },
        '/s',
      ),
    );
    rows.push(
      rateRow(
        'webhook ingestion vs Ed25519 verifications alone, one core',
        { ours: webhook.ours, baseline: webhook.verifyOnly },
        '/s',
      ),
    );
    costs.push(costRow('a webhook (vs bare Koa + check)', webhook.ours, webhook.bareKoaVerify));
    if (share < 0.6) {
      bounds.push(
        `Webhook ingestion: one Ed25519 check alone costs ${num(1e6 / webhook.verifyOnly.perSecond)} µs here; ours spends ${num(webhook.ours.cpuUs)} µs of CPU per webhook against ${num(webhook.bareKoaVerify.cpuUs)} µs for the bare handler, and Redis ${num(webhook.ours.redisCpuUs)} µs on its one script (dedupe, record, history, stream entry, slot release).`,
      );
    }
  }
  if (dispatch) {
    const share = ratioOf(dispatch.pipeline.perSecond, dispatch.rawNoop.perSecond);
    const postShare = ratioOf(dispatch.rawPost.perSecond, dispatch.rawNoop.perSecond);
    goals.push(
      goal('dispatch (limits off) ≥ 50 % of a raw BullMQ no-op worker', share, 0.5, 'at-least', pct(share)),
    );
    rows.push({
      measure: `dispatch, limits off (${num(dispatch.jobs)} jobs, concurrency ${dispatch.concurrency}) vs raw BullMQ no-op`,
      ours: `${num(dispatch.pipeline.perSecond)} faxes/s`,
      baseline: `${num(dispatch.rawNoop.perSecond)} jobs/s`,
      ratio: pct(share),
    });
    rows.push({
      measure: 'dispatch vs a bare BullMQ worker that only POSTs',
      ours: `${num(dispatch.pipeline.perSecond)} faxes/s`,
      baseline: `${num(dispatch.rawPost.perSecond)} faxes/s`,
      ratio: pct(ratioOf(dispatch.pipeline.perSecond, dispatch.rawPost.perSecond)),
    });
    const us = (ms: number) => `${num(ms * 1000)} µs`;
    const { pipeline, rawPost, rawNoop } = dispatch;
    costs.push({
      measure: 'a dispatch: worker CPU (vs POST-only; no-op)',
      ours: `${us(pipeline.cpuMsPerJob)}, Redis ${us(pipeline.redisCpuMsPerJob)}, simulator ${us(pipeline.simulatorCpuMsPerJob)}`,
      baseline: `${us(rawPost.cpuMsPerJob)}, Redis ${us(rawPost.redisCpuMsPerJob)}, simulator ${us(rawPost.simulatorCpuMsPerJob)}; ${us(rawNoop.cpuMsPerJob)}, Redis ${us(rawNoop.redisCpuMsPerJob)}`,
      ratio: pct(ratioOf(pipeline.cpuMsPerJob, rawPost.cpuMsPerJob)),
    });
    if (share < 0.5) {
      const where = dispatch.pinned
        ? 'Each worker ran alone on core 0; Redis and the simulator shared the other cores.'
        : 'The worker, Redis and the simulator shared the cores.';
      // What the cores other than the worker's could carry: Redis's and the simulator's CPU per fax.
      const peerMs = pipeline.redisCpuMsPerJob + pipeline.simulatorCpuMsPerJob;
      bounds.push(
        `Dispatch: the POST itself bounds it. ${where} A bare BullMQ worker that only POSTs reaches ${pct(postShare)} of the no-op rate (${us(rawPost.cpuMsPerJob)} of worker CPU per job against ${us(rawNoop.cpuMsPerJob)}), so no worker that sends over HTTP gets near 50 % here. Ours reaches ${pct(ratioOf(pipeline.perSecond, rawPost.perSecond))} of that POST-only rate: around its POST it claims the fax's slots and marks it as being sent, then records the 202 (status, history, stream entry), each one atomic script, so that a crash can neither lose nor double-send a fax. That adds ${us(pipeline.cpuMsPerJob - rawPost.cpuMsPerJob)} of worker CPU and ${us(pipeline.redisCpuMsPerJob - rawPost.redisCpuMsPerJob)} of Redis CPU per fax${dispatch.pinned && meta.machine.cpus === 2 ? `; Redis and the simulator together spent ${us(peerMs)} per fax on the one core they shared, which caps ours near ${num(1000 / peerMs)} faxes/s here` : ''}.`,
      );
    }
  }
  if (enqueue) {
    const missed: string[] = [];
    for (const [kind, label] of ENQUEUE_KINDS) {
      const pair = enqueue[kind];
      const share = ratioOf(pair.ours.perSecond, pair.baseline.perSecond);
      const against =
        kind === 'http' ? 'of its baseline (raw BullMQ behind a bare Koa handler)' : 'of raw BullMQ';
      goals.push(goal(`enqueue, ${label} ≥ 70 % ${against}`, share, 0.7, 'at-least', pct(share)));
      rows.push(rateRow(`enqueue, ${label}`, pair, 'faxes/s'));
      costs.push(costRow(`a fax queued, ${kind}`, pair.ours, pair.baseline));
      if (share < 0.7) missed.push(kind);
    }
    if (missed.length > 0) {
      const { ours, baseline } = enqueue.concurrent;
      bounds.push(
        `Enqueue (${missed.join(', ')}): before its BullMQ job, ours writes the fax's record, its \`fax.enqueued\` stream entry, its history and an outbox entry in one atomic script (so a 202 is never lost, even if the producer dies before the job is added), and clears the outbox entry after: ${num(ours.redisCommands, 1)} Redis commands and ${num(ours.redisCpuUs)} µs of Redis CPU per fax (calls in flight) against ${num(baseline.redisCommands, 1)} and ${num(baseline.redisCpuUs)} µs for \`queue.add\` alone, and, for a single fax, three round trips against one (\`queueBatch()\` stores its faxes' records one at a time, so that a failure part-way can say how many were stored, and adds their jobs 100 at a time: one round trip per fax). On Redis's CPU alone that caps ours at ${pct(ratioOf(baseline.redisCpuUs, ours.redisCpuUs))} of the raw rate, and on the calling process's CPU (validation with zod and libphonenumber, the record's arguments, BullMQ's own add) at ${pct(ratioOf(baseline.cpuUs, ours.cpuUs))}.`,
      );
    }
  }
  if (memory) {
    goals.push(
      goal(
        `Redis memory ≤ 2 KB per queued fax (with \`hash-max-listpack-value 512\`, as compose and the private redis-server run it; ${num(memory.stock.redisBytesPerFax)} B with stock settings)`,
        memory.redisBytesPerFax,
        2048,
        'at-most',
        `${num(memory.redisBytesPerFax)} B`,
      ),
    );
    rows.push({
      measure: `Redis memory per queued fax (${num(memory.backlog)} queued, \`hash-max-listpack-value 512\`)`,
      ours: `${num(memory.redisBytesPerFax)} B`,
      baseline: `${num(memory.rawBytesPerJob)} B per raw job`,
      ratio: pct(ratioOf(memory.redisBytesPerFax, memory.rawBytesPerJob)),
    });
    rows.push({
      measure: `the same with Redis's stock settings (${num(memory.stock.sample)} queued)`,
      ours: `${num(memory.stock.redisBytesPerFax)} B`,
      baseline: `${num(memory.stock.rawBytesPerJob)} B per raw job`,
      ratio: pct(ratioOf(memory.stock.redisBytesPerFax, memory.stock.rawBytesPerJob)),
    });
    rows.push({
      measure: 'more Redis memory per fax once parked in its channel line',
      ours: `${num(memory.parkedExtraBytesPerFax)} B`,
      baseline: `${num(memory.rawParkedExtraBytesPerJob)} B per raw job delayed`,
      ratio: pct(ratioOf(memory.parkedExtraBytesPerFax, memory.rawParkedExtraBytesPerJob)),
    });
    rows.push({
      measure: `worker RSS: idle → backlog of ${num(memory.backlog)} parked (peak), concurrency ${memory.concurrency}`,
      ours: `${mb(memory.worker.idleRssBytes)} → ${mb(memory.worker.rssBytes)} (${mb(memory.worker.peakRssBytes)})`,
      baseline: `${mb(memory.rawWorker.idleRssBytes)} → ${mb(memory.rawWorker.rssBytes)} (${mb(memory.rawWorker.peakRssBytes)})`,
      ratio: pct(ratioOf(memory.worker.rssBytes, memory.rawWorker.rssBytes)),
    });
    rows.push({
      measure: `time to park the backlog`,
      ours: `${num(memory.worker.parkSeconds, 1)} s`,
      baseline: `${num(memory.rawWorker.parkSeconds, 1)} s`,
      ratio: pct(ratioOf(memory.worker.parkSeconds, memory.rawWorker.parkSeconds)),
    });
    if (memory.redisBytesPerFax > 2048) {
      bounds.push(
        `Redis memory: a queued fax is its record (a hash), its history (a list), its stream entry and its BullMQ job (${num(memory.rawBytesPerJob)} B of it for a raw job alone); with Redis's stock \`hash-max-listpack-value 64\` the record and job become hash tables (${num(memory.stock.redisBytesPerFax)} B per fax).`,
      );
    }
  }
  if (latency) {
    rows.push({
      measure: `end to end, \`POST /v2/faxes\` → \`fax.delivered\` on the stream, p50 (instant simulator, ${latency.perSecond} faxes/s)`,
      ours: ms(latency.ours.p50Ms),
      baseline: ms(latency.baseline.p50Ms),
      ratio: pct(ratioOf(latency.ours.p50Ms, latency.baseline.p50Ms)),
    });
    rows.push({
      measure: `end to end, p99 (${num(latency.ours.samples)} faxes)`,
      ours: ms(latency.ours.p99Ms),
      baseline: ms(latency.baseline.p99Ms),
      ratio: pct(ratioOf(latency.ours.p99Ms, latency.baseline.p99Ms)),
    });
  }
  if (utilization) {
    goals.push(
      goal(
        'channel utilization ≥ 95 %',
        utilization.utilization,
        0.95,
        'at-least',
        pct(utilization.utilization),
      ),
    );
    goals.push(
      goal(
        'release → next dispatch p99 ≤ 100 ms',
        utilization.releaseToSendP99Ms,
        100,
        'at-most',
        ms(utilization.releaseToSendP99Ms),
      ),
    );
    rows.push({
      measure: `channel utilization (${utilization.channels} channels, ${num(utilization.faxes)} faxes, ${utilization.callMs} ms calls; at most ${utilization.maxInFlight} in flight)`,
      ours: pct(utilization.utilization),
      baseline: '100 % (every channel busy while faxes wait)',
      ratio: pct(utilization.utilization),
    });
    rows.push({
      measure: 'release → next dispatch, p50 / p99',
      ours: `${ms(utilization.releaseToSendP50Ms)} / ${ms(utilization.releaseToSendP99Ms)}`,
      baseline: '—',
      ratio: '—',
    });
    if (utilization.utilization < 0.95 || !(utilization.releaseToSendP99Ms <= 100)) {
      bounds.push(
        `Channel utilization and release → next dispatch: a freed channel is refilled by a chain of processes (the simulator's webhook, our webhook service, Redis, the woken worker, its POST), each of which must get a core within milliseconds: from a call's end to the next POST took ${ms(utilization.releaseToSendP50Ms)} (p50) and ${ms(utilization.releaseToSendP99Ms)} (p99), with a load average of ${meta.loadAverage.start.toFixed(2)} → ${meta.loadAverage.end.toFixed(2)} on ${meta.machine.cpus} cores during the run.`,
      );
    }
  }
  return { meta, goals, rows, costs, bounds, figures };
}
