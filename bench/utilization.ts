import { createProducer } from '../producer/producer.ts';
import { connectRedis } from '../shared/redis.ts';
import { createRuntime } from '../shared/runtime.ts';
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
    // As deployed: the webhook service and the worker in processes of their own.
    const env = { FAX_ACCOUNT_CHANNEL_LIMIT: String(channels), TELNYX_RATE_LIMIT: 'none' };
    const webhook = await world.startService('webhook', env);
    const runtime = createRuntime(world.config(env), {
      redisTarget: world.redis.url,
      logger,
      telnyx: { apiKey: 'bench', baseUrl: `${world.sim.url}/v2`, publicKey: world.sim.simulator.publicKey },
      webhookUrl: `${webhook.url}/webhooks/telnyx`,
    });
    const redis = connectRedis(world.redis.url);
    const producer = createProducer({ redis, keys: runtime.keys, logger, slots: runtime.slots });
    for (let i = 0; i < faxes; i++) await producer.send(benchFax(i));
    await producer.close();
    redis.disconnect();
    world.startWorker({ ...env, FAX_WEBHOOK_URL: `${webhook.url}/webhooks/telnyx` });
    const stats = world.sim.simulator.lifecycle.stats;
    await until(
      () => stats.delivered + stats.failed >= faxes,
      faxes * callMs + 30_000,
      'every fax delivered',
    );

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
