import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { loadConfig } from '../../shared/config.ts';
import type { EventSink, FaxEvent } from '../../shared/events.ts';
import { createKeys, type Keys } from '../../shared/keys.ts';
import { connectRedis, type FaxRedis } from '../../shared/redis.ts';
import { startRedisServer } from '../../shared/redis-server.ts';
import { type SlotSettings, slotSettings } from '../../shared/slots/settings.ts';

export interface TestRedis {
  readonly url: string;
  /** A key prefix of this test's own, so tests sharing a server never meet. */
  readonly prefix: string;
}

/**
 * A Redis for one test: `REDIS_URL` when given (isolated by key prefix), else a private
 * `redis-server` on a free port, stopped when the test ends.
 */
export async function testRedis(t: ExecutionContext): Promise<TestRedis> {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, prefix };
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  return { url: server.url, prefix };
}

/**
 * A test Redis with the pipeline's scripts and an event sink on it: the environment `env` (as the
 * services would parse it) and slot settings adjusted by `slots`.
 */
export async function testSink(
  t: ExecutionContext,
  env: Record<string, string> = {},
  slots: Partial<SlotSettings> = {},
): Promise<{ url: string; redis: FaxRedis; keys: Keys; sink: EventSink }> {
  const { url, prefix } = await testRedis(t);
  const redis = connectRedis(url);
  t.teardown(() => redis.disconnect());
  const keys = createKeys(prefix, `${prefix}:events`);
  const config = loadConfig(env);
  const sink: EventSink = {
    redis,
    keys,
    streamMaxLen: 10_000,
    slots: { ...slotSettings(config.env, prefix), ...slots },
    retryPolicy: config.retryPolicy,
  };
  return { url, redis, keys, sink };
}

/** An inbound event (no fax of ours), for tests that need entries on the stream. */
export function inboundEvent(payload: Record<string, unknown>): FaxEvent {
  return {
    eventId: randomUUID(),
    eventType: 'fax.received',
    faxId: undefined,
    status: undefined,
    occurredAt: new Date().toISOString(),
    direction: 'inbound',
    payload,
    dedupe: true,
  };
}
