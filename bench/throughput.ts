import type { ChildProcess } from 'node:child_process';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createProducer } from '../producer/producer.ts';
import { createKeys } from '../shared/keys.ts';
import { connectRedis } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { inFlight } from './measure.ts';
import { benchFax, cpuSeconds, logger, startWorld, until } from './world.ts';

export interface Rate {
  /** Jobs (faxes) a second, from the first to the last. */
  readonly perSecond: number;
  /** CPU ms per job of the worker's process, its start-up left out. */
  readonly cpuMsPerJob: number;
}

export interface ThroughputResult {
  readonly jobs: number;
  readonly concurrency: number;
  /** A BullMQ worker whose processor does nothing, on the same kind of Redis. */
  readonly rawNoop: Rate;
  /** A bare BullMQ worker process whose processor only POSTs a fax to the simulator. */
  readonly rawPost: Rate;
  /** `fax start worker` with every limit off: claim the fax's slots, POST it, record the 202. */
  readonly pipeline: Rate;
}

const rate = (times: readonly number[]) =>
  ((times.length - 1) / ((times[times.length - 1] as number) - (times[0] as number))) * 1000;

/**
 * Dispatch throughput with limits off, each worker at the same concurrency and from a backlog queued
 * beforehand: ours (`fax start worker`, its own process) against a raw BullMQ no-op worker, and
 * against a bare BullMQ worker process that only makes the POST — the least any fax sender does.
 */
export async function measureThroughput(jobs: number, concurrency: number): Promise<ThroughputResult> {
  const world = await startWorld({ recordTimes: true, callMs: 60_000 });
  const stats = world.sim.simulator.lifecycle.stats;

  /** Runs a worker process until the simulator has `jobs` more POSTs; its rate and CPU from its first POST. */
  async function measurePosts(start: () => ChildProcess): Promise<Rate> {
    const before = stats.postTimes.length;
    const child = start();
    await until(() => stats.postTimes.length > before, 60_000, 'the first POST');
    const startCpu = cpuSeconds(child.pid as number);
    const startCount = stats.postTimes.length;
    await until(() => stats.postTimes.length >= before + jobs, 300_000, `${jobs} POSTs`);
    const cpu = cpuSeconds(child.pid as number) - startCpu;
    child.kill('SIGTERM');
    return {
      perSecond: rate(stats.postTimes.slice(before, before + jobs)),
      cpuMsPerJob: (cpu * 1000) / (before + jobs - startCount),
    };
  }

  try {
    const connection = new Redis(world.redis.url, { maxRetriesPerRequest: null });
    const addJobs = async (name: string) => {
      const queue = new Queue(name, { connection, prefix: 'raw' });
      for (let i = 0; i < jobs; i += 500) {
        await queue.addBulk(
          Array.from({ length: Math.min(500, jobs - i) }, (_, j) => ({ name, data: { n: i + j } })),
        );
      }
      await queue.close();
    };

    // Baseline 1: a no-op BullMQ worker in this process (nothing else here is busy meanwhile).
    await addJobs('noop');
    const done: number[] = [];
    const cpuBefore = process.cpuUsage();
    const noop = new Worker(
      'noop',
      async () => {
        done.push(performance.now());
      },
      { connection, prefix: 'raw', concurrency },
    );
    await until(() => done.length >= jobs, 120_000, 'raw BullMQ backlog processed');
    const noopCpu = process.cpuUsage(cpuBefore);
    await noop.close();
    const rawNoop = { perSecond: rate(done), cpuMsPerJob: (noopCpu.user + noopCpu.system) / 1000 / jobs };

    // Baseline 2: a bare BullMQ worker process that only POSTs.
    await addJobs('rawpost');
    const rawPost = await measurePosts(() =>
      world.startScript('raw-worker', { MODE: 'post', QUEUE: 'rawpost', CONCURRENCY: String(concurrency) }),
    );
    connection.disconnect();

    // Ours: faxes queued by the producer, sent by `fax start worker` in its own process.
    const limitsOff = {
      FAX_ACCOUNT_CHANNEL_LIMIT: 'none',
      FAX_CHANNEL_LIMIT: 'none',
      FAX_DESTINATION_CONCURRENCY: 'none',
      TELNYX_RATE_LIMIT: 'none',
      FAX_WORKER_CONCURRENCY: String(concurrency),
    };
    const config = world.config(limitsOff);
    const redis = connectRedis(world.redis.url);
    const keys = createKeys(config.env.FAX_KEY_PREFIX, config.env.FAX_STREAM_KEY);
    const producer = createProducer({ redis, keys, logger, slots: slotSettings(config.env, keys.prefix) });
    await inFlight(jobs, 32, (i) => producer.send(benchFax(i)));
    const pipeline = await measurePosts(() => world.startWorker(limitsOff));
    await producer.close();
    redis.disconnect();
    return { jobs, concurrency, rawNoop, rawPost, pipeline };
  } finally {
    await world.close();
  }
}
