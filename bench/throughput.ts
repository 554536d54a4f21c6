import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createProducer } from '../producer/producer.ts';
import { createKeys } from '../shared/keys.ts';
import { connectRedis } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { cpuSeconds, destination, logger, startWorld, until } from './world.ts';

export interface ThroughputResult {
  readonly jobs: number;
  readonly concurrency: number;
  /** Jobs a second of a BullMQ worker that does nothing, on the same Redis. */
  readonly rawBullmqPerSecond: number;
  /** Faxes a second our worker POSTs to the simulator with every limit off. */
  readonly pipelinePerSecond: number;
  /** CPU ms per job of the raw worker's process, and per fax of ours (its Telnyx HTTP call included). */
  readonly rawCpuMsPerJob: number;
  readonly pipelineCpuMsPerFax: number;
}

const rate = (times: readonly number[]) =>
  ((times.length - 1) / ((times[times.length - 1] as number) - (times[0] as number))) * 1000;

/**
 * Dispatch throughput with limits off: our worker process (read the fax, take its slots, POST it,
 * record the 202) against a raw BullMQ worker whose processor does nothing, both at the same
 * concurrency against the same kind of private Redis, each from a backlog queued beforehand.
 */
export async function measureThroughput(jobs: number, concurrency: number): Promise<ThroughputResult> {
  const world = await startWorld({ recordTimes: true, callMs: 60_000 });
  try {
    // Baseline: a no-op BullMQ worker in this process.
    const connection = new Redis(world.redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue('noop', { connection, prefix: 'raw' });
    for (let i = 0; i < jobs; i += 500) {
      await queue.addBulk(
        Array.from({ length: Math.min(500, jobs - i) }, (_, j) => ({ name: 'noop', data: { n: i + j } })),
      );
    }
    const done: number[] = [];
    const cpuBefore = process.cpuUsage();
    const raw = new Worker(
      'noop',
      async () => {
        done.push(performance.now());
      },
      { connection, prefix: 'raw', concurrency },
    );
    await until(() => done.length >= jobs, 120_000, 'raw BullMQ backlog processed');
    const rawCpu = process.cpuUsage(cpuBefore);
    await raw.close();
    await queue.close();
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
    for (let i = 0; i < jobs; i++) {
      await producer.send({
        connection_id: 'bench',
        from: '+19459457421',
        to: destination(i),
        media_url: 'https://example.com/a.pdf',
      });
    }
    const worker = world.startWorker(limitsOff);
    const stats = world.sim.simulator.lifecycle.stats;
    // The worker's CPU from its first POST (after its start-up) to its last.
    await until(() => stats.accepted > 0, 60_000, 'the first POST');
    const startCpu = cpuSeconds(worker.pid as number);
    const startCount = stats.accepted;
    await until(() => stats.accepted >= jobs, 300_000, 'every fax POSTed');
    const workerCpu = cpuSeconds(worker.pid as number) - startCpu;
    await producer.close();
    redis.disconnect();
    return {
      jobs,
      concurrency,
      rawBullmqPerSecond: rate(done),
      pipelinePerSecond: rate(stats.postTimes),
      // The raw worker shares this process with nothing else busy; its start-up is not in the figure.
      rawCpuMsPerJob: (rawCpu.user + rawCpu.system) / 1000 / jobs,
      pipelineCpuMsPerFax: (workerCpu * 1000) / (jobs - startCount),
    };
  } finally {
    await world.close();
  }
}
