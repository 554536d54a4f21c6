import type { Keys } from '../shared/keys.ts';
import type { Logger } from '../shared/logger.ts';
import { type FaxRedis, redisNowMs } from '../shared/redis.ts';

export interface RetentionDeps {
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly logger: Logger;
  /** Entries older than this are trimmed (FAX_STREAM_MAX_AGE_SECONDS); undefined: length only. */
  readonly maxAgeMs: number | undefined;
}

/** Orders stream ids (`ms-seq`). */
function idBefore(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am < bm || (am === bm && as < bs);
}

/**
 * The stream's retention: every entry publishes with `MAXLEN ~ FAX_STREAM_MAXLEN`; this trims by age
 * too (`XTRIM MINID`), then warns about every consumer group that has fallen behind what is kept —
 * entries it never read are gone for it. Resolves to those groups.
 */
export async function enforceRetention(deps: RetentionDeps): Promise<string[]> {
  const { redis, keys } = deps;
  if (deps.maxAgeMs !== undefined) {
    const now = await redisNowMs(redis);
    await redis.xtrim(keys.stream, 'MINID', `${now - deps.maxAgeMs}-0`);
  }
  const stream = pairs((await redis.xinfo('STREAM', keys.stream).catch(() => [])) as unknown[]);
  const length = Number(stream.length ?? 0);
  if (length === 0) return [];
  const added = Number(stream['entries-added'] ?? length);
  const oldest = String((stream['first-entry'] as unknown[] | undefined)?.[0] ?? '0-0');
  const groups = (await redis.xinfo('GROUPS', keys.stream)) as unknown[][];
  const behind: string[] = [];
  for (const raw of groups) {
    const group = pairs(raw);
    const read = group['entries-read'];
    // Entries the group has not read yet, against those still kept.
    const lost =
      read === null || read === undefined
        ? idBefore(String(group['last-delivered-id'] ?? '0-0'), oldest) && added > length
        : added - Number(read) > length;
    if (lost) behind.push(String(group.name));
  }
  for (const group of behind) {
    deps.logger.warn(
      { group, oldestKept: oldest },
      'a consumer group fell behind the stream retention: entries it had not read were trimmed',
    );
  }
  return behind;
}

function pairs(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}
