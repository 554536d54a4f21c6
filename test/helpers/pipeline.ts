import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { startProducerService } from '../../producer/main.ts';
import { loadConfig } from '../../shared/config.ts';
import { parseStreamEntry, type StreamEntry } from '../../shared/events.ts';
import type { Keys } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { connectRedis, type FaxRedis, type RedisTarget } from '../../shared/redis.ts';
import { createRuntime, type Runtime } from '../../shared/runtime.ts';
import { startSimulatorService } from '../../simulator/main.ts';
import type { SimulatorOptionsInput } from '../../simulator/options.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { startWebhookService } from '../../webhook/main.ts';
import { startWorkerService } from '../../worker/main.ts';
import type { SlotKeeperOptions } from '../../worker/slot-keeper.ts';
import type { SlotSettings } from '../../shared/slots/settings.ts';
import { testRedis } from './redis.ts';
import type { TestCluster } from './redis-cluster.ts';

export interface TestPipeline {
  readonly producerUrl: string;
  readonly webhookUrl: string;
  readonly simulatorUrl: string;
  readonly simulator: Simulator;
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly runtime: Runtime;
  readonly env: Record<string, string>;
  /** Every stream entry so far. */
  entries(): Promise<StreamEntry[]>;
  /** Waits until every one of the faxes has a final status; resolves to their records' statuses. */
  waitForAll(faxIds: readonly string[], timeoutMs?: number): Promise<string[]>;
  /** Waits until `done` holds for the stream entries of one fax. */
  waitForFax(
    faxId: string,
    done: (entries: StreamEntry[]) => boolean,
    timeoutMs?: number,
  ): Promise<StreamEntry[]>;
}

export interface PipelineOptions {
  readonly env?: Record<string, string>;
  readonly simulator?: SimulatorOptionsInput;
  /** Start a worker in this process (default true). */
  readonly worker?: boolean;
  readonly keeper?: SlotKeeperOptions;
  /** Slot settings beyond what the environment sets (short retry times). */
  readonly slots?: Partial<SlotSettings>;
  /** A Redis of the test's own (e.g. one it restarts) instead of a fresh one. */
  readonly redisUrl?: string;
  /** A Redis Cluster (test/helpers/redis-cluster.ts) instead of one Redis; keys get a hash tag. */
  readonly cluster?: TestCluster;
}

/** The whole pipeline in this process, on free ports, against a test Redis and the simulator. */
export async function startPipeline(
  t: ExecutionContext,
  options: PipelineOptions = {},
): Promise<TestPipeline> {
  const redisInfo: { target: RedisTarget; prefix: string; env: Record<string, string> } = options.cluster
    ? {
        target: options.cluster.target,
        prefix: `{t${randomUUID().slice(0, 8)}}`,
        // REDIS_URL emptied: a child process must not inherit one beside the cluster.
        env: { REDIS_CLUSTER_NODES: options.cluster.nodes, REDIS_URL: '' },
      }
    : await oneRedis();
  async function oneRedis() {
    const { url, prefix } = options.redisUrl
      ? { url: options.redisUrl, prefix: `t${randomUUID().slice(0, 8)}` }
      : await testRedis(t);
    return { target: url, prefix, env: { REDIS_URL: url } };
  }
  const env = {
    ...redisInfo.env,
    FAX_KEY_PREFIX: redisInfo.prefix,
    FAX_STREAM_KEY: `${redisInfo.prefix}:events`,
    LOG_LEVEL: 'silent',
    TELNYX_API_KEY: 'test-key',
    ...options.env,
  };
  const config = loadConfig(env);
  const logger = createLogger(config.env.LOG_LEVEL, 'test');
  const sim = await startSimulatorService(logger, 0, '127.0.0.1', {
    apiKey: 'test-key',
    stepMs: 20,
    callMs: 50,
    ...options.simulator,
  });
  t.teardown(() => sim.close());
  const resolved = createRuntime(config, {
    redisTarget: redisInfo.target,
    logger,
    telnyx: { apiKey: 'test-key', baseUrl: `${sim.url}/v2`, publicKey: sim.simulator.publicKey },
    webhookUrl: undefined,
  });
  const base = { ...resolved, slots: { ...resolved.slots, ...options.slots } };
  const { keys } = base;
  const webhook = await startWebhookService(base, 0);
  t.teardown(() => webhook.close());
  const webhookUrl = `${webhook.url}/webhooks/telnyx`;
  const runtime: Runtime = { ...base, webhookUrl };
  if (options.worker !== false) {
    const worker = await startWorkerService(runtime, options.keeper ? { keeper: options.keeper } : {});
    t.teardown(() => worker.close());
  }
  const producer = await startProducerService(runtime, 0);
  t.teardown(() => producer.close());
  const redis = connectRedis(redisInfo.target);
  redis.on('error', () => undefined); // a test may stop Redis on purpose
  t.teardown(() => redis.disconnect());

  async function entries(): Promise<StreamEntry[]> {
    const raw = (await redis.xrange(keys.stream, '-', '+')) as [string, string[]][];
    return raw.map(([id, fields]) => parseStreamEntry(id, fields));
  }

  return {
    producerUrl: producer.url,
    webhookUrl,
    simulatorUrl: sim.url,
    simulator: sim.simulator,
    redis,
    keys,
    runtime,
    env: { ...env, TELNYX_BASE_URL: `${sim.url}/v2` },
    entries,
    async waitForAll(faxIds, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const pipe = redis.pipeline();
        for (const faxId of faxIds) pipe.hget(keys.fax(faxId), 'status');
        const statuses = ((await pipe.exec()) ?? []).map(([, status]) => String(status));
        const open = statuses.filter((status) => status !== 'delivered' && status !== 'failed').length;
        if (open === 0) return statuses;
        if (Date.now() > deadline) throw new Error(`${open} of ${faxIds.length} faxes not final in time`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async waitForFax(faxId, done, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const mine = (await entries()).filter((entry) => entry.fax_id === faxId);
        if (done(mine)) return mine;
        if (Date.now() > deadline) {
          throw new Error(
            `fax ${faxId}: condition not met; entries: ${mine.map((e) => e.event_type).join(', ')}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
  };
}

/** Queues a fax through the producer's HTTP API as JSON; resolves to our fax id. */
export async function queueFax(
  pipeline: TestPipeline,
  fax: Record<string, unknown> = SEED_FAX,
): Promise<string> {
  const response = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fax),
  });
  if (response.status !== 202)
    throw new Error(`queueing failed: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { data: { id: string } }).data.id;
}

/** Queues `count` faxes one after another, the seed's with `fax(i)` over it; resolves to their ids. */
export async function queueFaxes(
  pipeline: TestPipeline,
  count: number,
  fax: (i: number) => Record<string, unknown>,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await queueFax(pipeline, { ...SEED_FAX, ...fax(i) }));
  return ids;
}

export const isFinal = (entries: StreamEntry[]) => entries.some((entry) => entry.final);

/**
 * A fax's final entry. Not always its last: a webhook Telnyx had to send again (no 2xx within 2 s)
 * can arrive after the final one, and is published without changing anything.
 */
export const finalEntry = (entries: readonly StreamEntry[]) => entries.find((entry) => entry.final);

export const SEED_FAX = {
  media_url: 'https://www.w3.org/WAI/ER/tests/xhtml/testfiles/resources/pdf/dummy.pdf',
  connection_id: '1232154810234',
  to: '+13129457420',
  from: '+19459457421',
} as const;
