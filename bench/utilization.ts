import { createProducer } from '../producer/producer.ts';
import { connectRedis } from '../shared/redis.ts';
import { createRuntime } from '../shared/runtime.ts';
import { startWebhookService } from '../webhook/main.ts';
import { startWorkerService } from '../worker/main.ts';
import { percentile, releaseToSend, timeWeightedMean } from './stats.ts';
import { benchFax, logger, startWorld, until } from './world.ts';

export interface UtilizationResult {
  readonly channels: number;
  readonly faxes: number;
  readonly callMs: number;
  /** Mean calls in flight ÷ channels while faxes were waiting. */
  readonly utilization: number;
  readonly releaseToSendP50Ms: number;
  readonly releaseToSendP99Ms: number;
  readonly maxInFlight: number;
}

/**
 * A backlog of faxes through the whole pipeline (producer, worker, webhook, simulator) with the
 * simulator enforcing `channels`: how busy the channels are kept, and how soon a freed channel carries
 * the next call (simulator call end → next POST arriving at the simulator).
 */
export async function measureUtilization(
  channels: number,
  faxes: number,
  callMs: number,
): Promise<UtilizationResult> {
  const world = await startWorld({ stepMs: 20, callMs, accountChannelLimit: channels, recordTimes: true });
  try {
    const config = world.config({
      FAX_ACCOUNT_CHANNEL_LIMIT: String(channels),
      TELNYX_RATE_LIMIT: 'none',
      LOG_LEVEL: 'silent',
    });
    const base = createRuntime(config, {
      redisTarget: world.redis.url,
      logger,
      telnyx: { apiKey: 'bench', baseUrl: `${world.sim.url}/v2`, publicKey: world.sim.simulator.publicKey },
      webhookUrl: undefined,
    });
    const webhook = await startWebhookService(base, 0);
    const runtime = { ...base, webhookUrl: `${webhook.url}/webhooks/telnyx` };
    const redis = connectRedis(world.redis.url);
    const producer = createProducer({ redis, keys: runtime.keys, logger, slots: runtime.slots });
    for (let i = 0; i < faxes; i++) await producer.send(benchFax(i));
    const worker = await startWorkerService(runtime);
    const stats = world.sim.simulator.lifecycle.stats;
    await until(() => stats.delivered + stats.failed >= faxes, faxes * callMs, 'every fax delivered');
    await worker.close();
    await webhook.close();
    await producer.close();
    redis.disconnect();

    const posts = stats.postTimes;
    const from = posts[0] as number;
    const lastPost = posts[posts.length - 1] as number;
    const releases = stats.callEndTimes.filter((time) => time < lastPost);
    const waits = releaseToSend(releases, posts.slice(channels));
    return {
      channels,
      faxes,
      callMs,
      utilization: timeWeightedMean(stats.timeline, from, lastPost) / channels,
      releaseToSendP50Ms: percentile(waits, 50),
      releaseToSendP99Ms: percentile(waits, 99),
      maxInFlight: stats.maxInFlight,
    };
  } finally {
    await world.close();
  }
}
