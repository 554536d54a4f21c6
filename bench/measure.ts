import type { Cluster, Redis } from 'ioredis';
import { countCommands, cpuSeconds } from './world.ts';

/** One side of a comparison, over every round: its rate and what each item cost. */
export interface Sample {
  /** Items a second: the median over the rounds. */
  readonly perSecond: number;
  /** Each round's rate, in the order run. */
  readonly rounds: readonly number[];
  /** CPU µs per item of the process doing the work (median over the rounds). */
  readonly cpuUs: number;
  /** CPU µs per item of redis-server (median over the rounds). */
  readonly redisCpuUs: number;
  /** Redis commands per item (a script call counts as one), and by name, from the last round. */
  readonly redisCommands: number;
  readonly commandsByName: Readonly<Record<string, number>>;
}

export interface Pair {
  readonly ours: Sample;
  readonly baseline: Sample;
}

export interface RoundFigures {
  readonly perSecond: number;
  readonly cpuUs: number;
  readonly redisCpuUs: number;
  readonly commands: Map<string, number>;
}

/** Where a round's costs are read: the Redis it uses, and the process doing the work. */
export interface Meter {
  readonly redis: Redis | Cluster;
  readonly redisPid: number;
  /** The process whose CPU counts as the work's (default: this one). */
  readonly pid?: () => number;
}

/**
 * Runs `action` once, which does `items` of work, and measures its rate and costs. `action` may
 * resolve to its own elapsed seconds (measured from its first item) to leave set-up out.
 */
export async function measureRound(
  meter: Meter,
  items: number,
  action: () => Promise<number | undefined>,
): Promise<RoundFigures> {
  const cpu = () => (meter.pid ? cpuSeconds(meter.pid()) * 1e6 : cpuMicros());
  let seconds = 0;
  let appCpu = 0;
  let redisCpu = 0;
  const commands = await countCommands(meter.redis, async () => {
    const startCpu = cpu();
    const startRedis = cpuSeconds(meter.redisPid);
    const start = performance.now();
    const own = await action();
    seconds = own ?? (performance.now() - start) / 1000;
    appCpu = cpu() - startCpu;
    redisCpu = (cpuSeconds(meter.redisPid) - startRedis) * 1e6;
  });
  return { perSecond: items / seconds, cpuUs: appCpu / items, redisCpuUs: redisCpu / items, commands };
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 === 1
    ? (sorted[Math.floor(middle)] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

function summarize(runs: readonly RoundFigures[], items: number): Sample {
  const last = runs[runs.length - 1] as RoundFigures;
  const byName = Object.fromEntries([...last.commands].map(([name, calls]) => [name, calls / items]));
  return {
    perSecond: median(runs.map((run) => run.perSecond)),
    rounds: runs.map((run) => run.perSecond),
    cpuUs: median(runs.map((run) => run.cpuUs)),
    redisCpuUs: median(runs.map((run) => run.redisCpuUs)),
    redisCommands: Object.values(byName).reduce((sum, calls) => sum + calls, 0),
    commandsByName: byName,
  };
}

/**
 * Runs each of `runs` `rounds` times, one right after the other, rotating which goes first (A B C,
 * B C A, …) so that a machine getting busier or quieter weighs on all alike.
 */
export async function rotated(
  rounds: number,
  items: number,
  runs: readonly ((round: number) => Promise<RoundFigures>)[],
): Promise<Sample[]> {
  const figures: RoundFigures[][] = runs.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < runs.length; k++) {
      const which = (round + k) % runs.length;
      (figures[which] as RoundFigures[]).push(
        await (runs[which] as (round: number) => Promise<RoundFigures>)(round),
      );
    }
  }
  return figures.map((each) => summarize(each, items));
}

/** {@link rotated} for a baseline and ours. */
export async function paired(
  rounds: number,
  items: number,
  baseline: (round: number) => Promise<RoundFigures>,
  ours: (round: number) => Promise<RoundFigures>,
): Promise<Pair> {
  const [base, own] = (await rotated(rounds, items, [baseline, ours])) as [Sample, Sample];
  return { ours: own, baseline: base };
}

/** Runs `one(i)` for i in [0, count) with `concurrency` calls in flight at a time. */
export async function inFlight(
  count: number,
  concurrency: number,
  one: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await one(next++);
    }),
  );
}
