import { parseStreamEntry } from '../shared/events.ts';
import type { Keys } from '../shared/keys.ts';
import type { FaxRedis } from '../shared/redis.ts';

export interface EventsOptions {
  readonly follow: boolean;
  readonly group?: string | undefined;
  readonly consumer: string;
  /** Stream id to start after (`0` = from the beginning, `$` = only new). */
  readonly from: string;
  readonly write: (line: string) => void;
  readonly signal?: AbortSignal;
}

type XReadReply = [string, [string, string[]][]][] | null;
type Variadic = (...args: (string | number)[]) => Promise<XReadReply>;

// ioredis types XREAD/XREADGROUP by fixed overloads; the argument list here is built at run time.
const xread = (redis: FaxRedis, args: (string | number)[]) =>
  (redis.xread as unknown as Variadic).apply(redis, args);
const xreadgroup = (redis: FaxRedis, args: (string | number)[]) =>
  (redis.xreadgroup as unknown as Variadic).apply(redis, args);

/**
 * `fax events`: prints stream entries as JSON lines. With a group, reads through a consumer group
 * and acknowledges each entry once printed, so a restarted reader resumes where it stopped.
 */
export async function printEvents(redis: FaxRedis, keys: Keys, options: EventsOptions): Promise<void> {
  const block = options.follow ? ['BLOCK', '1000'] : [];
  if (options.group) {
    await redis
      .xgroup('CREATE', keys.stream, options.group, options.from, 'MKSTREAM')
      .catch((error: Error) => {
        if (!error.message.includes('BUSYGROUP')) throw error;
      });
  }
  // `$` means "after the newest entry now": pin it to that id, or entries added between two blocking
  // reads would be skipped.
  let cursor = options.from;
  if (cursor === '$' && !options.group) {
    const newest = (await redis.xrevrange(keys.stream, '+', '-', 'COUNT', 1))[0];
    cursor = newest?.[0] ?? '0-0';
  }
  let pendingFirst = true;
  while (!options.signal?.aborted) {
    let reply: XReadReply;
    if (options.group) {
      // First our own unacknowledged entries (from a crash), then new ones.
      reply = await xreadgroup(redis, [
        'GROUP',
        options.group,
        options.consumer,
        'COUNT',
        100,
        ...(pendingFirst ? [] : block),
        'STREAMS',
        keys.stream,
        pendingFirst ? '0' : '>',
      ]);
    } else {
      reply = await xread(redis, ['COUNT', 100, ...block, 'STREAMS', keys.stream, cursor]);
    }
    const entries = reply?.[0]?.[1] ?? [];
    for (const [id, fields] of entries) {
      options.write(`${JSON.stringify(parseStreamEntry(id, fields))}\n`);
      if (options.group) await redis.xack(keys.stream, options.group, id);
      cursor = id;
    }
    if (pendingFirst && options.group) {
      if (entries.length === 0) pendingFirst = false;
      continue;
    }
    if (entries.length === 0 && !options.follow) return;
  }
}
