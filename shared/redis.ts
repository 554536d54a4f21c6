import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisClusterTarget } from './redis-cluster.ts';

export type { Cluster, Redis };

/** Where Redis is: a `redis://` / `rediss://` URL for one server, or a Redis Cluster. */
export type RedisTarget = string | RedisClusterTarget;

const read = (path: string) => readFileSync(new URL(`./scripts/${path}.lua`, import.meta.url), 'utf8');
/** A script with helper libraries (scripts/lib/*.lua) in front of it. */
const withLibs = (name: string, libs: readonly string[]) =>
  [...libs.map((lib) => read(`lib/${lib}`)), read(name)].join('\n');
const withSlots = (name: string) => withLibs(name, ['slots']);

/**
 * Lua scripts, each with its contract header in shared/scripts. Every one declares at least one key:
 * on a Redis Cluster a script runs on the node of its first key. Keys a script builds from the prefix
 * itself (the slot scripts') share the declared keys' hash tag, so they are in the same slot (config.ts
 * refuses key names without one on a cluster).
 */
const SCRIPTS = {
  applyEvent: { lua: withSlots('apply-event'), numberOfKeys: 6 },
  acquireSlots: { lua: withLibs('acquire-slots', ['slots', 'rate']), numberOfKeys: 3 },
  releaseSlots: { lua: withSlots('release-slots'), numberOfKeys: 1 },
  handBack: { lua: withSlots('hand-back'), numberOfKeys: 1 },
  stampPost: { lua: withSlots('stamp-post'), numberOfKeys: 1 },
  failedPost: { lua: withSlots('failed-post'), numberOfKeys: 1 },
  renewLease: { lua: withSlots('renew-lease'), numberOfKeys: 1 },
  slotTick: { lua: withSlots('slot-tick'), numberOfKeys: 1 },
  leaveLine: { lua: withSlots('leave-line'), numberOfKeys: 1 },
  setLimit: { lua: withSlots('set-limit'), numberOfKeys: 1 },
  limitsSnapshot: { lua: withSlots('limits-snapshot'), numberOfKeys: 1 },
  rateLimit: { lua: withLibs('rate-limit', ['rate']), numberOfKeys: 2 },
  claimIdempotency: { lua: read('claim-idempotency'), numberOfKeys: 1 },
} as const;

type ScriptName = keyof typeof SCRIPTS;

/** A connection to one Redis or to a Redis Cluster, with our scripts defined on it. */
export type FaxRedis = (Redis | Cluster) & {
  [K in ScriptName]: (...args: (string | number)[]) => Promise<unknown>;
};

export interface RedisConnectOptions {
  /**
   * Fail commands at once while disconnected (HTTP services answer 503) instead of queueing them.
   * BullMQ workers want the opposite: block and resume after a reconnect.
   */
  readonly failFast?: boolean;
  readonly name?: string;
}

const reconnectDelay = (times: number) => Math.min(times * 100, 2000);

/** Connects to one Redis (a URL) or a Redis Cluster; BullMQ takes either as its `connection`. */
export function connectRedis(target: RedisTarget, options: RedisConnectOptions = {}): FaxRedis {
  const base: RedisOptions = {
    connectionName: options.name ?? 'fax',
    maxRetriesPerRequest: options.failFast ? 1 : null,
  };
  const redis = (
    typeof target === 'string'
      ? new Redis(target, { ...base, enableOfflineQueue: !options.failFast, retryStrategy: reconnectDelay })
      : new Cluster(
          target.nodes.map(({ host, port }) => ({ host, port })),
          {
            redisOptions: {
              ...base,
              ...(target.username === undefined ? {} : { username: target.username }),
              ...(target.password === undefined ? {} : { password: target.password }),
              ...(target.tls ? { tls: {} } : {}),
            },
            enableOfflineQueue: !options.failFast,
            clusterRetryStrategy: reconnectDelay,
          },
        )
  ) as FaxRedis;
  for (const [name, { lua, numberOfKeys }] of Object.entries(SCRIPTS)) {
    redis.defineCommand(name, { lua, numberOfKeys });
  }
  return redis;
}

/** Resolves once the connection is ready, or rejects with the connection error. */
export async function waitReady(redis: Redis | Cluster, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs);
    const onReady = () => done();
    const onError = (error: Error) => done(error);
    function done(error?: Error) {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      error ? reject(error) : resolve();
    }
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}

/** Redis's clock (`TIME`) in ms: the one clock every process shares, whatever this machine's says. */
export async function redisNowMs(redis: Redis | Cluster): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
