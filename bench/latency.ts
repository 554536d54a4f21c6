import type { Cluster, Redis } from 'ioredis';
import { connectRedis } from '../shared/redis.ts';
import { jsonRequest, pace } from './http-load.ts';
import { percentile } from './stats.ts';
import { benchFax, startWorld, until } from './world.ts';

export interface LatencyOptions {
  /** Faxes per round, sent at `perSecond`. */
  readonly faxes: number;
  readonly perSecond: number;
  readonly rounds: number;
}

export interface Latencies {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
}

export interface LatencyResult extends LatencyOptions {
  /** `POST /v2/faxes` to `fax.delivered` on the status stream, through producer, worker and webhook service. */
  readonly ours: Latencies;
  /**
   * The same path with nothing of ours: a bare Koa handler's `queue.add`, a raw BullMQ worker's POST
   * to the simulator, and a bare Koa webhook handler that checks the signature and `XADD`s the event.
   */
  readonly baseline: Latencies;
}

/**
 * End-to-end latency with an instant simulator (no steps, zero-length calls): from sending
 * `POST /v2/faxes` to a stream reader (`XREAD BLOCK`) seeing the fax's `fax.delivered`. Faxes arrive
 * at a steady rate (an open loop), well below capacity, so this is the path's latency, not a queue's.
 * Every part runs in its own process, as deployed; ours and the baseline take turns.
 */
export async function measureLatency(options: LatencyOptions): Promise<LatencyResult> {
  const { faxes, perSecond, rounds } = options;
  const world = await startWorld({ stepMs: 0, callMs: 0 });
  const reader = connectRedis(world.redis.url);
  try {
    const limitsOff = {
      FAX_ACCOUNT_CHANNEL_LIMIT: 'none',
      FAX_CHANNEL_LIMIT: 'none',
      FAX_DESTINATION_CONCURRENCY: 'none',
      TELNYX_RATE_LIMIT: 'none',
    };
    const webhook = await world.startService('webhook', limitsOff);
    const env = { ...limitsOff, FAX_WEBHOOK_URL: `${webhook.url}/webhooks/telnyx` };
    const producer = await world.startService('producer', env);
    world.startWorker(env);
    const bareWebhook = await world.startBare('webhook-stream', {
      PUBLIC_KEY: world.sim.simulator.publicKey,
    });
    const bareEnqueue = await world.startBare('enqueue');
    world.startScript('raw-worker', {
      MODE: 'post',
      QUEUE: 'raw',
      CONCURRENCY: '16',
      WEBHOOK_URL: `${bareWebhook.url}/webhooks/telnyx`,
    });

    let offset = 0;
    const run = async (url: string, stream: string, idField: string, count: number) => {
      const delivered = new Map<string, number>();
      const stop = await follow(reader, stream, idField, delivered);
      const requests = Array.from({ length: count }, (_, i) =>
        jsonRequest('/v2/faxes', benchFax(offset + i)),
      );
      offset += count;
      const sent = await pace(url, requests, perSecond);
      const ids = sent.bodies.map((body) => (JSON.parse(body) as { data: { id: string } }).data.id);
      await until(() => ids.every((id) => delivered.has(id)), 60_000, `${count} faxes delivered (${stream})`);
      await stop();
      return ids.map((id, i) => (delivered.get(id) as number) - (sent.sentAt[i] as number));
    };
    const ours = () => run(producer.url, 'bench:events', 'fax_id', faxes);
    const baseline = () => run(bareEnqueue.url, 'raw:events', 'id', faxes);
    // Warm-up: every process's first faxes (JIT, connections), unmeasured.
    await run(producer.url, 'bench:events', 'fax_id', 50);
    await run(bareEnqueue.url, 'raw:events', 'id', 50);
    const own: number[] = [];
    const base: number[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        base.push(...(await baseline()));
        own.push(...(await ours()));
      } else {
        own.push(...(await ours()));
        base.push(...(await baseline()));
      }
    }
    return { ...options, ours: summarize(own), baseline: summarize(base) };
  } finally {
    reader.disconnect();
    await world.close();
  }
}

function summarize(latencies: readonly number[]): Latencies {
  return {
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: Math.max(...latencies),
    samples: latencies.length,
  };
}

/**
 * Reads the stream from now on, noting when each `fax.delivered` entry (by its `idField`) is seen.
 * Resolves once reading has begun, to a function that stops it.
 */
async function follow(
  redis: Redis | Cluster,
  stream: string,
  idField: string,
  delivered: Map<string, number>,
) {
  // From the stream's last entry now (not `$` on every call, which would skip entries added between
  // two calls).
  const newest = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0];
  let last = newest ? newest[0] : '0-0';
  let running = true;
  const loop = (async () => {
    while (running) {
      const reply = (await redis.xread('COUNT', 1000, 'BLOCK', 100, 'STREAMS', stream, last)) as
        | [string, [string, string[]][]][]
        | null;
      const seenAt = performance.now();
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          last = id;
          const field = (name: string) => fields[fields.indexOf(name) + 1];
          if (field('event_type') === 'fax.delivered') delivered.set(field(idField) as string, seenAt);
        }
      }
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}
