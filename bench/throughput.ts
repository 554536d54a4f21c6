import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createProducer } from '../producer/producer.ts';
import { createKeys } from '../shared/keys.ts';
import { connectRedis } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { inFlight } from './measure.ts';
import { benchFax, cpuSeconds, logger, pin, startWorld, until, type World } from './world.ts';

export interface Rate {
  /** Jobs (faxes) a second, from the first to the last. */
  readonly perSecond: number;
  /** CPU ms per job of the worker's process, its start-up and warm-up left out. */
  readonly cpuMsPerJob: number;
  /** CPU ms per job of redis-server. */
  readonly redisCpuMsPerJob: number;
  /** CPU ms per job of the bench process, which runs the simulator (idle for the no-op worker). */
  readonly simulatorCpuMsPerJob: number;
}

export interface ThroughputResult {
  readonly jobs: number;
  readonly concurrency: number;
  /**
   * Whether each worker had core 0 to itself, Redis, the simulator and this process running on the
   * other cores (as in a deployment, where Telnyx and Redis are other machines); false on one core or
   * without `taskset`, where everything shares the cores.
   */
  readonly pinned: boolean;
  /** A BullMQ worker process whose processor does nothing, on the same kind of Redis. */
  readonly rawNoop: Rate;
  /** A bare BullMQ worker process whose processor only POSTs a fax to the simulator. */
  readonly rawPost: Rate;
  /** `fax start worker` with every limit off: claim the fax's slots, POST it, record the 202. */
  readonly pipeline: Rate;
}

const rate = (times: readonly number[]) =>
  ((times.length - 1) / ((times[times.length - 1] as number) - (times[0] as number))) * 1000;

/**
 * Dispatch throughput with limits off, each worker at the same concurrency, in its own process and
 * from a backlog queued beforehand: ours (`fax start worker`) against a raw BullMQ no-op worker, and
 * against a bare BullMQ worker that only makes the POST — the least any fax sender does. Each runs in
 * a world of its own (a fresh Redis and simulator: none inherits another's keys, calls or heap). What
 * is measured is the worker, so where the machine has the cores each worker runs on core 0 alone and
 * Redis, the simulator and this process on the others.
 */
export async function measureThroughput(jobs: number, concurrency: number): Promise<ThroughputResult> {
  const others = cpus().length >= 2 ? `1-${cpus().length - 1}` : undefined;
  const pinned = others !== undefined && pin(process.pid, others);
  const workerCpus = pinned ? '0' : undefined;
  // The first fifth of each worker's jobs warm its JIT up and are left out of its rate and CPU.
  const warmup = Math.floor(jobs / 5);

  /** A world for one measurement, its Redis beside this process (off the workers' core). */
  async function world(): Promise<World> {
    const started = await startWorld({ recordTimes: true, callMs: 60_000 });
    if (others !== undefined && pinned) pin(started.redis.process.pid as number, others);
    return started;
  }

  /** `jobs` raw BullMQ jobs on a queue of `world`'s Redis. */
  async function addJobs(into: World, name: string) {
    const connection = new Redis(into.redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(name, { connection, prefix: 'raw' });
    for (let i = 0; i < jobs; i += 500) {
      await queue.addBulk(
        Array.from({ length: Math.min(500, jobs - i) }, (_, j) => ({ name, data: { n: i + j } })),
      );
    }
    await queue.close();
    connection.disconnect();
  }

  /** Runs a worker process until the simulator has `jobs` POSTs; its rate and CPU after the warm-up. */
  async function measurePosts(into: World, start: () => ChildProcess): Promise<Rate> {
    const stats = into.sim.simulator.lifecycle.stats;
    const redisPid = into.redis.process.pid as number;
    const child = start();
    await until(() => stats.postTimes.length > warmup, 60_000, 'the warm-up POSTs');
    const startCpu = cpuSeconds(child.pid as number);
    const startRedisCpu = cpuSeconds(redisPid);
    const startSimulatorCpu = process.cpuUsage();
    const startCount = stats.postTimes.length;
    await until(() => stats.postTimes.length >= jobs, 300_000, `${jobs} POSTs`);
    const cpu = cpuSeconds(child.pid as number) - startCpu;
    const redisCpu = cpuSeconds(redisPid) - startRedisCpu;
    const simulatorCpu = process.cpuUsage(startSimulatorCpu);
    const counted = jobs - startCount;
    await into.stop(child);
    return {
      perSecond: rate(stats.postTimes.slice(startCount, jobs)),
      cpuMsPerJob: (cpu * 1000) / counted,
      redisCpuMsPerJob: (redisCpu * 1000) / counted,
      simulatorCpuMsPerJob: (simulatorCpu.user + simulatorCpu.system) / 1000 / counted,
    };
  }

  async function inWorld<T>(measure: (into: World) => Promise<T>): Promise<T> {
    const into = await world();
    try {
      return await measure(into);
    } finally {
      await into.close();
    }
  }

  try {
    // Baseline 1: a no-op BullMQ worker; it reports its own rate once done.
    const rawNoop = await inWorld(async (into) => {
      await addJobs(into, 'noop');
      const outFile = join(mkdtempSync(join(tmpdir(), 'fax-bench-')), 'noop.json');
      const redisPid = into.redis.process.pid as number;
      const redisCpu = cpuSeconds(redisPid);
      const noop = into.startScript(
        'raw-worker',
        {
          MODE: 'noop',
          QUEUE: 'noop',
          CONCURRENCY: String(concurrency),
          JOBS: String(jobs),
          WARMUP: String(warmup),
          OUT_FILE: outFile,
        },
        workerCpus,
      );
      try {
        await until(() => existsSync(outFile), 120_000, 'raw BullMQ backlog processed');
        return {
          ...(JSON.parse(readFileSync(outFile, 'utf8')) as Pick<Rate, 'perSecond' | 'cpuMsPerJob'>),
          // Redis's work per job does not warm up: over every job.
          redisCpuMsPerJob: ((cpuSeconds(redisPid) - redisCpu) * 1000) / jobs,
          simulatorCpuMsPerJob: 0,
        };
      } finally {
        await into.stop(noop);
        rmSync(dirname(outFile), { recursive: true, force: true });
      }
    });

    // Baseline 2: a bare BullMQ worker process that only POSTs.
    const rawPost = await inWorld(async (into) => {
      await addJobs(into, 'rawpost');
      return measurePosts(into, () =>
        into.startScript(
          'raw-worker',
          { MODE: 'post', QUEUE: 'rawpost', CONCURRENCY: String(concurrency) },
          workerCpus,
        ),
      );
    });

    // Ours: faxes queued by the producer, sent by `fax start worker` in its own process.
    const pipeline = await inWorld(async (into) => {
      const limitsOff = {
        FAX_ACCOUNT_CHANNEL_LIMIT: 'none',
        FAX_CHANNEL_LIMIT: 'none',
        FAX_DESTINATION_CONCURRENCY: 'none',
        TELNYX_RATE_LIMIT: 'none',
        FAX_WORKER_CONCURRENCY: String(concurrency),
      };
      const config = into.config(limitsOff);
      const redis = connectRedis(into.redis.url);
      const keys = createKeys(config.env.FAX_KEY_PREFIX, config.env.FAX_STREAM_KEY);
      const producer = createProducer({ redis, keys, logger, slots: slotSettings(config.env, keys.prefix) });
      try {
        await inFlight(jobs, 32, (i) => producer.send(benchFax(i)));
        return await measurePosts(into, () => into.startWorker(limitsOff, workerCpus));
      } finally {
        await producer.close();
        redis.disconnect();
      }
    });
    return { jobs, concurrency, pinned, rawNoop, rawPost, pipeline };
  } finally {
    if (pinned) pin(process.pid, `0-${cpus().length - 1}`);
  }
}
