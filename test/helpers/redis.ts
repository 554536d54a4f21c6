import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { startRedisServer } from '../../shared/redis-server.ts';

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
