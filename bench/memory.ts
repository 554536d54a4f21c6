import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { createProducer } from '../producer/producer.ts';
import { createKeys, FAX_QUEUE } from '../shared/keys.ts';
import { faxJobOptions } from '../shared/queue.ts';
import { connectRedis } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { inFlight } from './measure.ts';
import { benchFax, logger, residentMemory, startWorld, until, usedMemory } from './world.ts';

export interface WorkerMemory {
  /** Resident memory of the same worker started with nothing to do (bytes). */
  readonly idleRssBytes: number;
  /** Resident memory once every job of the backlog is parked, and the highest it reached (bytes). */
  readonly rssBytes: number;
  readonly peakRssBytes: number;
  /** Seconds it took to park the whole backlog. */
  readonly parkSeconds: number;
}

export interface MemoryResult {
  readonly backlog: number;
  readonly concurrency: number;
  /** Redis `used_memory` growth per queued fax (bytes): ours, and a raw BullMQ job carrying the request. */
  readonly redisBytesPerFax: number;
  readonly rawBytesPerJob: number;
  /** The same, with Redis's stock settings (`hash-max-listpack-value 64`), on a smaller sample. */
  readonly stock: {
    readonly sample: number;
    readonly redisBytesPerFax: number;
    readonly rawBytesPerJob: number;
  };
  /** More Redis memory per fax once the worker has parked it in its channel line (bytes); and per raw job delayed. */
  readonly parkedExtraBytesPerFax: number;
  readonly rawParkedExtraBytesPerJob: number;
  /** `fax start worker` parking the backlog (account channel limit 0: nothing can be sent). */
  readonly worker: WorkerMemory;
  /** A raw BullMQ worker process moving every job of an equal raw backlog to the delayed set. */
  readonly rawWorker: WorkerMemory;
}

/**
 * Memory with a backlog: `backlog` faxes queued with no worker running, then a worker process, at
 * the configured concurrency, that can send nothing (account channel limit 0, a pause) and so parks
 * every fax in its line, holding none. Redis bytes per fax come from `used_memory` deltas; the
 * worker's resident memory from /proc. Raw BullMQ jobs (the request as their data) and a raw worker
 * that delays every job are measured the same way beside it.
 */
export async function measureMemory(backlog: number): Promise<MemoryResult> {
  const world = await startWorld();
  const redis = connectRedis(world.redis.url);
  try {
    const config = world.config({});
    const concurrency = config.env.FAX_WORKER_CONCURRENCY;
    const keys = createKeys(config.env.FAX_KEY_PREFIX, config.env.FAX_STREAM_KEY);
    const producer = createProducer({ redis, keys, logger, slots: slotSettings(config.env, keys.prefix) });
    const raw = new Queue('raw', { connection: redis, prefix: 'raw' });
    const queueOurs = (count: number, first: number) =>
      inFlight(count, 64, (i) => producer.queue(benchFax(first + i)));
    const queueRaw = async (count: number, first: number) => {
      for (let i = 0; i < count; i += 1000) {
        await raw.addBulk(
          Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({
            name: 'fax',
            data: { request: benchFax(first + i + j) },
            opts: faxJobOptions(randomUUID(), 5),
          })),
        );
      }
    };
    /** used_memory growth per item of `fill`. */
    const bytesPer = async (count: number, fill: () => Promise<void>) => {
      const before = await usedMemory(redis);
      await fill();
      return ((await usedMemory(redis)) - before) / count;
    };

    // Each worker idle first, on a queue of its own that is empty.
    const idleWorker = world.startWorker({ FAX_ACCOUNT_CHANNEL_LIMIT: '0', FAX_KEY_PREFIX: 'idle' });
    const idleRaw = world.startScript('raw-worker', {
      MODE: 'park',
      QUEUE: 'idle',
      CONCURRENCY: String(concurrency),
    });
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const idleRss = {
      worker: residentMemory(idleWorker.pid as number).rss,
      raw: residentMemory(idleRaw.pid as number).rss,
    };
    await world.stop(idleWorker);
    await world.stop(idleRaw);

    // Stock Redis settings first, on a sample, then the deployment's for the whole backlog.
    const sample = Math.min(backlog, 10_000);
    await queueOurs(100, 0);
    await queueRaw(100, 0);
    const configured = (await redis.config('GET', 'hash-max-listpack-value')) as [string, string];
    await redis.config('SET', 'hash-max-listpack-value', '64');
    await redis.flushall();
    const stock = {
      sample,
      rawBytesPerJob: await bytesPer(sample, () => queueRaw(sample, 0)),
      redisBytesPerFax: await bytesPer(sample, () => queueOurs(sample, sample)),
    };
    await redis.config('SET', 'hash-max-listpack-value', configured[1]);
    await redis.flushall();
    const rawBytesPerJob = await bytesPer(backlog, () => queueRaw(backlog, 0));
    const redisBytesPerFax = await bytesPer(backlog, () => queueOurs(backlog, backlog));
    await producer.close();
    await raw.close();

    /** Starts a worker and waits until `delayed` holds the whole backlog; its memory then, and at peak. */
    const parkAll = async (delayed: string, idleRssBytes: number, start: () => ChildProcess) => {
      const began = performance.now();
      const before = await usedMemory(redis);
      const child = start();
      await until(async () => (await redis.zcard(delayed)) >= backlog, 600_000, `${backlog} jobs parked`);
      const parkSeconds = (performance.now() - began) / 1000;
      // What the worker still holds once idle (a collection may be due: give it a moment).
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const { rss, peak } = residentMemory(child.pid as number);
      await world.stop(child);
      const extraBytes = ((await usedMemory(redis)) - before) / backlog;
      return { memory: { idleRssBytes, rssBytes: rss, peakRssBytes: peak, parkSeconds }, extraBytes };
    };
    const rawParked = await parkAll('raw:raw:delayed', idleRss.raw, () =>
      world.startScript('raw-worker', { MODE: 'park', QUEUE: 'raw', CONCURRENCY: String(concurrency) }),
    );
    const parked = await parkAll(`${keys.bullPrefix}:${FAX_QUEUE}:delayed`, idleRss.worker, () =>
      world.startWorker({ FAX_ACCOUNT_CHANNEL_LIMIT: '0' }),
    );
    return {
      backlog,
      concurrency,
      redisBytesPerFax,
      rawBytesPerJob,
      stock,
      parkedExtraBytesPerFax: parked.extraBytes,
      rawParkedExtraBytesPerJob: rawParked.extraBytes,
      worker: parked.memory,
      rawWorker: rawParked.memory,
    };
  } finally {
    redis.disconnect();
    await world.close();
  }
}
