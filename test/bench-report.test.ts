import test from 'ava';
import type { Pair, Sample } from '../bench/measure.ts';
import { type BenchFigures, type BenchMeta, buildReport } from '../bench/report.ts';
import {
  markdownTable,
  README_END,
  README_START,
  renderMarkdown,
  withReadmeTable,
} from '../bench/report-markdown.ts';

const meta: BenchMeta = {
  measuredAt: '2026-11-27T08:00:00.000Z',
  durationSeconds: 300,
  machine: { cpus: 2, cpuModel: 'Test CPU', memoryGb: 24, node: 'v20.19.0', redis: '7.0.15' },
  loadAverage: { start: 0.2, end: 0.4 },
  cpuInUseBefore: 0.05,
  knobs: { BENCH_ROUNDS: 2 },
};

const sample = (perSecond: number, cpuUs = 100, redisCpuUs = 50): Sample => ({
  perSecond,
  rounds: [perSecond, perSecond],
  cpuUs,
  redisCpuUs,
  redisCommands: 12,
  commandsByName: { evalsha: 2, zrem: 1 },
});
const pair = (ours: number, baseline: number): Pair => ({ ours: sample(ours), baseline: sample(baseline) });

/** Figures with each ratio goal exactly at, or just short of, its threshold. */
function figures(atThreshold: boolean): BenchFigures {
  const short = atThreshold ? 0 : 1;
  return {
    utilization: {
      channels: 8,
      faxes: 240,
      callMs: 400,
      utilization: 0.95 - short / 1000,
      releaseToSendP50Ms: 10,
      releaseToSendP99Ms: 100 + short / 10,
      maxInFlight: 8,
    },
    enqueue: {
      faxes: 5000,
      concurrency: 32,
      batchSize: 1000,
      rounds: 2,
      single: pair(700 - short, 1000),
      concurrent: pair(7000 - short, 10_000),
      batch: pair(700 - short, 1000),
      http: pair(700 - short, 1000),
    },
    webhook: {
      webhooks: 8000,
      concurrency: 32,
      rounds: 2,
      ours: sample(600 - short),
      bareKoa: sample(5000),
      bareKoaVerify: sample(1000),
      verifyOnly: sample(2000),
    },
    dispatch: {
      jobs: 3000,
      concurrency: 16,
      pinned: true,
      rawNoop: { perSecond: 1000, cpuMsPerJob: 0.1, redisCpuMsPerJob: 0.05, simulatorCpuMsPerJob: 0 },
      rawPost: { perSecond: 800, cpuMsPerJob: 0.3, redisCpuMsPerJob: 0.06, simulatorCpuMsPerJob: 0.13 },
      pipeline: {
        perSecond: 500 - short,
        cpuMsPerJob: 0.4,
        redisCpuMsPerJob: 0.2,
        simulatorCpuMsPerJob: 0.13,
      },
    },
    memory: {
      backlog: 100_000,
      concurrency: 16,
      redisBytesPerFax: 2048 + short,
      rawBytesPerJob: 600,
      stock: { sample: 10_000, redisBytesPerFax: 2700, rawBytesPerJob: 990 },
      parkedExtraBytesPerFax: 300,
      rawParkedExtraBytesPerJob: 200,
      worker: { idleRssBytes: 145e6, rssBytes: 170e6, peakRssBytes: 171e6, parkSeconds: 40 },
      rawWorker: { idleRssBytes: 100e6, rssBytes: 130e6, peakRssBytes: 131e6, parkSeconds: 25 },
    },
  };
}

/** Every table line of the Markdown, as its cells (escaped pipes kept inside their cell). */
function tables(markdown: string): string[][][] {
  const found: string[][][] = [];
  let current: string[][] | undefined;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('|')) {
      const cells = line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim());
      if (!current) {
        current = [];
        found.push(current);
      }
      current.push(cells);
    } else current = undefined;
  }
  return found;
}

test('a goal exactly at its threshold is met, one just short of it is not', (t) => {
  const at = buildReport(figures(true), meta);
  t.is(at.goals.length, 9);
  t.true(
    at.goals.every((goal) => goal.met),
    JSON.stringify(at.goals.filter((goal) => !goal.met)),
  );
  t.deepEqual(at.bounds, []);

  const short = buildReport(figures(false), meta);
  t.deepEqual(
    short.goals.filter((goal) => goal.met),
    [],
  );
  const markdown = renderMarkdown(short);
  t.is(markdown.match(/\*\*not met\*\*/g)?.length, short.goals.length);
  // Each goal missed is explained, with its figures.
  t.regex(markdown, /## What bounds the goals not met/);
  t.regex(markdown, /Enqueue \(single, concurrent, batch, http\)/);
  t.regex(
    markdown,
    /Dispatch: the POST itself bounds it\. Each worker ran alone on core 0; .* A bare BullMQ worker that only POSTs reaches 80\.0 %/,
  );
  // Where the cores beside the worker's are what bounds ours, the report says at what rate.
  t.regex(markdown, /Redis and the simulator together spent 330 µs per fax .* near 3,030 faxes\/s here/);
  t.regex(markdown, /Redis memory: .*2,700 B per fax/);
  t.regex(markdown, /Channel utilization and release → next dispatch: .*100\.1 ms \(p99\)/);
});

test('every table of the report keeps its header columns, whatever a cell holds', (t) => {
  const report = buildReport(figures(false), meta);
  const found = tables(renderMarkdown(report));
  t.is(found.length, 3, 'goals, figures, costs');
  for (const table of found) {
    const width = (table[0] as string[]).length;
    t.true(table.length > 2);
    t.true(table.every((row) => row.length === width));
    t.true((table[1] as string[]).every((cell) => cell === '---'));
  }
  const [goals, rows] = found as [string[][], string[][]];
  t.is(goals.length - 2, report.goals.length);
  t.is(rows.length - 2, report.rows.length);
  // A pipe inside a cell is escaped, not a new column.
  const piped = tables(markdownTable(['a', 'b'], [['x | y', 'z']]));
  t.deepEqual(piped[0]?.[2], ['x \\| y', 'z']);
});

test('a figure that could not be measured shows as n/a and meets no goal', (t) => {
  const broken = figures(true);
  const report = buildReport(
    {
      ...broken,
      webhook: { ...(broken.webhook as NonNullable<BenchFigures['webhook']>), bareKoaVerify: sample(0) },
    },
    meta,
  );
  const webhookGoal = report.goals.find((goal) => goal.goal.startsWith('webhook'));
  t.like(webhookGoal, { met: false, measured: 'n/a' });
  const markdown = renderMarkdown(report);
  t.notRegex(markdown, /NaN|Infinity|undefined/);
  // The JSON report keeps every goal's verdict.
  const json = JSON.parse(JSON.stringify(report)) as { goals: { met: boolean }[] };
  t.is(json.goals.filter((goal) => !goal.met).length, 1);
});

test('the README gets the new table between its markers and nothing else changes', (t) => {
  const report = buildReport(figures(true), meta);
  const readme = `# x\n\nbefore\n\n${README_START}\nold table\n${README_END}\n\nafter\n`;
  const published = withReadmeTable(readme, report);
  t.true(published.startsWith('# x\n\nbefore\n\n'));
  t.true(published.endsWith(`${README_END}\n\nafter\n`));
  t.false(published.includes('old table'));
  t.regex(published, /Latest run \(2026-11-27, 2 × Test CPU;/);
  t.is(tables(published).length, 2);
  // Publishing twice gives the same README.
  t.is(withReadmeTable(published, report), published);
  t.throws(() => withReadmeTable('# no markers\n', report), { message: /no <!-- bench:start -->/ });
  t.notRegex(published, /What bounds/);
  // Goals not met come with what bounds them, under the tables.
  const missed = withReadmeTable(readme, buildReport(figures(false), meta));
  t.is(tables(missed).length, 2);
  t.regex(missed, /What bounds the goals not met:\n\n- /);
  // A busy machine is said to be one.
  const busy = withReadmeTable(readme, { ...report, meta: { ...meta, cpuInUseBefore: 0.6 } });
  t.regex(busy, /a busy machine/);
  // The run's own load at its end does not make a quiet machine busy.
  const quiet = withReadmeTable(readme, {
    ...report,
    meta: { ...meta, loadAverage: { start: 0.2, end: 3 } },
  });
  t.notRegex(quiet, /a busy machine/);
});
