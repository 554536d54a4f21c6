import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { createProducer } from '../producer/producer.ts';
import { createKeys } from '../shared/keys.ts';
import { faxJobOptions } from '../shared/queue.ts';
import { connectRedis } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { fire, jsonRequest } from './http-load.ts';
import { inFlight, type Meter, measureRound, type Pair, paired } from './measure.ts';
import { benchFax, logger, startWorld } from './world.ts';

export interface EnqueueOptions {
  /** Faxes per round of the concurrent, batch and HTTP runs (a fifth of it one at a time). */
  readonly faxes: number;
  readonly concurrency: number;
  readonly batchSize: number;
  readonly rounds: number;
}

export interface EnqueueResult extends EnqueueOptions {
  /** One call at a time: `producer.queue()` against BullMQ's `queue.add()`. */
  readonly single: Pair;
  /** `concurrency` calls in flight: the same two. */
  readonly concurrent: Pair;
  /** `producer.queueBatch()` of `batchSize` recipients against `queue.addBulk()` of as many jobs. */
  readonly batch: Pair;
  /**
   * `POST /v2/faxes` to `fax start producer` against a bare Koa handler that parses the JSON and calls
   * `queue.add()` (bench/bare-server.ts), each in its own process, `concurrency` connections.
   */
  readonly http: Pair;
}

/**
 * Enqueue rates on one private Redis, every run of ours right beside its raw BullMQ counterpart. The
 * raw jobs carry the fax request as their data (what a queue without a fax record would store) and
 * the same job options as ours. Redis is emptied before every run.
 */
export async function measureEnqueue(options: EnqueueOptions): Promise<EnqueueResult> {
  const { faxes, concurrency, batchSize, rounds } = options;
  const world = await startWorld();
  const redis = connectRedis(world.redis.url);
  try {
    const config = world.config({});
    const keys = createKeys(config.env.FAX_KEY_PREFIX, config.env.FAX_STREAM_KEY);
    const producer = createProducer({ redis, keys, logger, slots: slotSettings(config.env, keys.prefix) });
    const raw = new Queue('raw', { connection: redis, prefix: 'raw' });
    const meter: Meter = { redis, redisPid: world.redis.process.pid as number };
    let offset = 0;
    /** The first index of `count` destinations no run has used yet. */
    const fresh = (count: number) => {
      const first = offset;
      offset += count;
      return first;
    };
    const rawJob = (i: number) => ({
      name: 'fax',
      data: { request: benchFax(i) },
      opts: faxJobOptions(randomUUID(), 5),
    });
    const recipients = (first: number, count: number) =>
      Array.from({ length: count }, (_, j) => benchFax(first + j).to);
    /** One measured run on an empty Redis; `work` may resolve to its own elapsed seconds. */
    const round = async (items: number, work: (first: number) => Promise<unknown>, where = meter) => {
      await redis.flushall();
      const first = fresh(items);
      return measureRound(where, items, async () => {
        const seconds = await work(first);
        return typeof seconds === 'number' ? seconds : undefined;
      });
    };

    // Warm both paths up (JIT, script cache) before anything is measured.
    const warm = fresh(500);
    await inFlight(500, concurrency, (i) => producer.queue(benchFax(warm + i)));
    await inFlight(500, concurrency, (i) => {
      const job = rawJob(warm + i);
      return raw.add(job.name, job.data, job.opts);
    });

    const sequential = Math.max(100, Math.round(faxes / 5));
    const single = await paired(
      rounds,
      sequential,
      () =>
        round(sequential, async (first) => {
          for (let i = 0; i < sequential; i++) {
            const job = rawJob(first + i);
            await raw.add(job.name, job.data, job.opts);
          }
        }),
      () =>
        round(sequential, async (first) => {
          for (let i = 0; i < sequential; i++) await producer.queue(benchFax(first + i));
        }),
    );
    const concurrent = await paired(
      rounds,
      faxes,
      () =>
        round(faxes, (first) =>
          inFlight(faxes, concurrency, (i) => {
            const job = rawJob(first + i);
            return raw.add(job.name, job.data, job.opts);
          }),
        ),
      () => round(faxes, (first) => inFlight(faxes, concurrency, (i) => producer.queue(benchFax(first + i)))),
    );
    const batch = await paired(
      rounds,
      faxes,
      () =>
        round(faxes, async (first) => {
          for (let i = 0; i < faxes; i += batchSize) {
            const size = Math.min(batchSize, faxes - i);
            await raw.addBulk(Array.from({ length: size }, (_, j) => rawJob(first + i + j)));
          }
        }),
      () =>
        round(faxes, async (first) => {
          for (let i = 0; i < faxes; i += batchSize) {
            const size = Math.min(batchSize, faxes - i);
            await producer.queueBatch({ ...benchFax(first), to: recipients(first + i, size) });
          }
        }),
    );
    await producer.close();
    await raw.close();

    const ours = await world.startService('producer', {});
    const bare = await world.startBare('enqueue');
    /** POSTs `count` faxes; resolves to the seconds from the first request to the last answer. */
    const post =
      (url: string, count = faxes) =>
      async (first: number) => {
        const requests = Array.from({ length: count }, (_, i) =>
          jsonRequest('/v2/faxes', benchFax(first + i)),
        );
        return (await fire(url, requests, concurrency)).seconds;
      };
    const onOurs = { ...meter, pid: () => ours.pid };
    const onBare = { ...meter, pid: () => bare.pid };
    // Warm-up of both servers.
    await post(ours.url, 500)(fresh(500));
    await post(bare.url, 500)(fresh(500));
    const http = await paired(
      rounds,
      faxes,
      () => round(faxes, post(bare.url), onBare),
      () => round(faxes, post(ours.url), onOurs),
    );
    return { ...options, single, concurrent, batch, http };
  } finally {
    redis.disconnect();
    await world.close();
  }
}
