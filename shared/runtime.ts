import type { Config } from './config.ts';
import type { EventSink } from './events.ts';
import { createKeys, type Keys } from './keys.ts';
import type { FaxRedis, RedisTarget } from './redis.ts';
import type { Logger } from './logger.ts';
import { createFaxMetrics, type FaxMetrics } from './metrics/fax-metrics.ts';
import { type SlotSettings, slotSettings } from './slots/settings.ts';

/** What every service is started with: parsed config and the resolved outside world. */
export interface Runtime {
  readonly config: Config;
  /** One Redis (a URL) or a Redis Cluster. */
  readonly redisTarget: RedisTarget;
  readonly keys: Keys;
  readonly logger: Logger;
  /** Telnyx as resolved at start: the real API, or the simulator in sandbox mode. */
  readonly telnyx: {
    readonly apiKey: string;
    readonly baseUrl: string;
    /** Verifies webhooks; undefined only when no webhook service runs. */
    readonly publicKey: string | undefined;
  };
  /** Sent to Telnyx as `webhook_url` with every fax. */
  readonly webhookUrl: string | undefined;
  readonly streamMaxLen: number;
  /** Channel slot settings from the environment (limits, lease). */
  readonly slots: SlotSettings;
  /** This process's metrics: every service started from this runtime counts into them. */
  readonly metrics: FaxMetrics;
}

/**
 * A started service: stop it and it has closed everything it opened. Closing is graceful: it stops
 * taking new work, then finishes or hands back what it holds (README: Operations).
 */
export interface Service {
  readonly name: string;
  close(): Promise<void>;
}

/** The event sink a service records and publishes through, on its own Redis connection. */
export function eventSink(runtime: Runtime, redis: FaxRedis): EventSink {
  return {
    redis,
    keys: runtime.keys,
    streamMaxLen: runtime.streamMaxLen,
    slots: runtime.slots,
    retryPolicy: runtime.config.retryPolicy,
    observer: runtime.metrics,
  };
}

/** The runtime for a parsed config and the Redis, Telnyx and webhook address resolved for it. */
export function createRuntime(
  config: Config,
  world: Pick<Runtime, 'redisTarget' | 'logger' | 'telnyx' | 'webhookUrl'>,
): Runtime {
  const { env } = config;
  return {
    config,
    ...world,
    keys: createKeys(env.FAX_KEY_PREFIX, env.FAX_STREAM_KEY),
    streamMaxLen: env.FAX_STREAM_MAXLEN,
    slots: slotSettings(env, env.FAX_KEY_PREFIX),
    metrics: createFaxMetrics(),
  };
}
