import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { startRedisServer } from '../shared/redis-server.ts';
import { connectRedis } from '../shared/redis.ts';
import { measureEnqueue } from './enqueue.ts';
import { measureLatency } from './latency.ts';
import { measureMemory } from './memory.ts';
import { type BenchFigures, buildReport } from './report.ts';
import { renderMarkdown, withReadmeTable } from './report-markdown.ts';
import { measureThroughput } from './throughput.ts';
import { measureUtilization } from './utilization.ts';
import { measureWebhooks } from './webhook-ingest.ts';
import { logLevel } from './world.ts';

/**
 * `npm run bench`: the pipeline's speed and memory, every figure beside a baseline measured in the
 * same run on the same kind of Redis, each goal judged. Writes bench/reports/latest.md and .json;
 * with `--publish` also bench/REPORT.md and the table in README.md. Sizes come from BENCH_* variables.
 */
const SCENARIOS = ['utilization', 'dispatch', 'enqueue', 'webhook', 'latency', 'memory'] as const;

function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a whole number of at least 1 (got ${JSON.stringify(raw)})`);
  }
  return value;
}

const only = (process.env.BENCH_ONLY ?? SCENARIOS.join(',')).split(',').map((name) => name.trim());
for (const name of only) {
  if (!(SCENARIOS as readonly string[]).includes(name)) {
    throw new Error(`BENCH_ONLY: unknown scenario ${JSON.stringify(name)} (known: ${SCENARIOS.join(', ')})`);
  }
}
const knobs = {
  BENCH_ONLY: only.join(','),
  BENCH_ROUNDS: knob('BENCH_ROUNDS', 3),
  BENCH_CONCURRENCY: knob('BENCH_CONCURRENCY', 32),
  BENCH_ENQUEUE_FAXES: knob('BENCH_ENQUEUE_FAXES', 5000),
  BENCH_BATCH_SIZE: knob('BENCH_BATCH_SIZE', 1000),
  BENCH_WEBHOOKS: knob('BENCH_WEBHOOKS', 8000),
  BENCH_DISPATCH_JOBS: knob('BENCH_DISPATCH_JOBS', 10000),
  BENCH_WORKER_CONCURRENCY: knob('BENCH_WORKER_CONCURRENCY', 16),
  BENCH_LATENCY_FAXES: knob('BENCH_LATENCY_FAXES', 300),
  BENCH_LATENCY_RATE: knob('BENCH_LATENCY_RATE', 50),
  BENCH_UTILIZATION_FAXES: knob('BENCH_UTILIZATION_FAXES', 240),
  BENCH_BACKLOG: knob('BENCH_BACKLOG', 100_000),
  BENCH_LOG_LEVEL: logLevel(),
};
const wanted = (name: (typeof SCENARIOS)[number]) => only.includes(name);
const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);

const cpuInUseBefore = await cpuInUse(3000);
const started = performance.now();
const loadAtStart = loadavg()[0] as number;
const rounds = knobs.BENCH_ROUNDS;
const concurrency = knobs.BENCH_CONCURRENCY;
const figures: {
  -readonly [K in keyof BenchFigures]: BenchFigures[K];
} = {};
if (wanted('utilization')) {
  progress('channel utilization');
  figures.utilization = await measureUtilization(8, knobs.BENCH_UTILIZATION_FAXES, 400);
}
if (wanted('dispatch')) {
  progress('dispatch throughput');
  figures.dispatch = await measureThroughput(knobs.BENCH_DISPATCH_JOBS, knobs.BENCH_WORKER_CONCURRENCY);
}
if (wanted('enqueue')) {
  progress('enqueue rates');
  figures.enqueue = await measureEnqueue({
    faxes: knobs.BENCH_ENQUEUE_FAXES,
    concurrency,
    batchSize: knobs.BENCH_BATCH_SIZE,
    rounds,
  });
}
if (wanted('webhook')) {
  progress('webhook ingestion');
  figures.webhook = await measureWebhooks({ webhooks: knobs.BENCH_WEBHOOKS, concurrency, rounds });
}
if (wanted('latency')) {
  progress('end-to-end latency');
  figures.latency = await measureLatency({
    faxes: knobs.BENCH_LATENCY_FAXES,
    perSecond: knobs.BENCH_LATENCY_RATE,
    rounds,
  });
}
if (wanted('memory')) {
  progress(`memory with a backlog of ${knobs.BENCH_BACKLOG}`);
  figures.memory = await measureMemory(knobs.BENCH_BACKLOG);
}

const report = buildReport(figures, {
  measuredAt: new Date().toISOString(),
  durationSeconds: (performance.now() - started) / 1000,
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    memoryGb: totalmem() / 2 ** 30,
    node: process.version,
    redis: await redisVersion(),
  },
  loadAverage: { start: loadAtStart, end: loadavg()[0] as number },
  cpuInUseBefore,
  knobs,
});
const markdown = renderMarkdown(report);
const json = `${JSON.stringify(report, null, 2)}\n`;
const reports = new URL('./reports/', import.meta.url);
mkdirSync(reports, { recursive: true });
writeFileSync(new URL('latest.md', reports), markdown);
writeFileSync(new URL('latest.json', reports), json);
progress(`report written to bench/reports/latest.md and latest.json`);
if (process.argv.includes('--publish')) {
  writeFileSync(new URL('./REPORT.md', import.meta.url), markdown);
  const readme = new URL('../README.md', import.meta.url);
  writeFileSync(readme, withReadmeTable(readFileSync(readme, 'utf8'), report));
  progress('published to bench/REPORT.md and README.md');
}
process.stdout.write(process.argv.includes('--json') ? json : markdown);

/** Share of every core's time spent not idle over `ms`, this process asleep meanwhile. */
async function cpuInUse(ms: number): Promise<number> {
  const sample = () =>
    cpus().reduce(
      (sum, cpu) => {
        const { idle, ...busy } = cpu.times;
        return {
          idle: sum.idle + idle,
          all: sum.all + idle + Object.values(busy).reduce((a, b) => a + b, 0),
        };
      },
      { idle: 0, all: 0 },
    );
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sample();
  const all = after.all - before.all;
  return all > 0 ? 1 - (after.idle - before.idle) / all : 0;
}

/** The version of the redis-server the scenarios start. */
async function redisVersion(): Promise<string> {
  const server = await startRedisServer();
  const redis = connectRedis(server.url);
  try {
    return /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1] ?? 'unknown';
  } finally {
    redis.disconnect();
    await server.stop();
  }
}
