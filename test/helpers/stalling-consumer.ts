/**
 * A subscriber in its own process, for crash tests: reads the stream through `GROUP` as `CONSUMER`,
 * records each entry it has handled (HINCRBY `<prefix>:handled:<group>` by stream id), and at its
 * `STALL_AT`th entry (0: none) prints `stalled <id>` and hangs, so the test can kill it holding entries.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeys } from '../../shared/keys.ts';
import { connectRedis } from '../../shared/redis.ts';
import { subscribe } from '../../shared/subscribe.ts';

const { REDIS_URL, PREFIX, GROUP, CONSUMER, STALL_AT, CLAIM_IDLE_MS } = process.env as Record<string, string>;
const redis = connectRedis(REDIS_URL as string);
const keys = createKeys(PREFIX as string, `${PREFIX}:events`);
let seen = 0;
const options = { redis, keys, group: GROUP as string, consumer: CONSUMER, from: 'beginning' as const };
for await (const entry of subscribe({ ...options, claimIdleMs: Number(CLAIM_IDLE_MS ?? 60_000) })) {
  if (++seen === Number(STALL_AT)) {
    process.stdout.write(`stalled ${entry.stream_id}\n`);
    await sleep(3_600_000);
  }
  await redis.hincrby(`${PREFIX}:handled:${GROUP}`, entry.stream_id, 1);
}
