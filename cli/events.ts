import { parseStreamEntry } from '../shared/events.ts';
import type { Keys } from '../shared/keys.ts';
import type { FaxRedis } from '../shared/redis.ts';
import { startId, subscribe } from '../shared/subscribe.ts';

export interface EventsOptions {
  readonly follow: boolean;
  readonly group?: string | undefined;
  readonly consumer: string;
  /** Stream id to start after (`0` = from the beginning, `$` = only new), or an ISO 8601 time. */
  readonly from: string;
  /** With a group: move the group back (or on) to `from` even if it exists (replay). */
  readonly rewind?: boolean;
  readonly write: (line: string) => void;
  readonly signal?: AbortSignal;
}

type XReadReply = [string, [string, string[]][]][] | null;
type Variadic = (...args: (string | number)[]) => Promise<XReadReply>;

// ioredis types XREAD/XREADGROUP by fixed overloads; the argument list here is built at run time.
const xread = (redis: FaxRedis, args: (string | number)[]) =>
  (redis.xread as unknown as Variadic).apply(redis, args);

/**
 * `fax events`: prints stream entries as JSON lines. With a group, reads through `subscribe()`: each
 * entry acknowledged once printed, a dead reader's entries taken back after a minute.
 */
export async function printEvents(redis: FaxRedis, keys: Keys, options: EventsOptions): Promise<void> {
  const time = /^\d{4}-\d\d-\d\dT/.test(options.from) ? new Date(options.from) : undefined;
  if (time && Number.isNaN(time.getTime())) throw new Error(`--from: ${options.from} is not a time`);
  const from = time ?? (options.from === '0' ? 'beginning' : options.from === '$' ? 'now' : options.from);
  if (options.group) {
    for await (const entry of subscribe({
      redis,
      keys,
      group: options.group,
      consumer: options.consumer,
      from,
      rewind: options.rewind ?? false,
      follow: options.follow,
      ...(options.signal ? { signal: options.signal } : {}),
    })) {
      options.write(`${JSON.stringify(entry)}\n`);
    }
    return;
  }
  const block = options.follow ? ['BLOCK', '1000'] : [];
  // `$` means "after the newest entry now": pin it to that id, or entries added between two blocking
  // reads would be skipped.
  let cursor = startId(from);
  if (cursor === '$') {
    const newest = (await redis.xrevrange(keys.stream, '+', '-', 'COUNT', 1))[0];
    cursor = newest?.[0] ?? '0-0';
  }
  while (!options.signal?.aborted) {
    const reply = await xread(redis, ['COUNT', 100, ...block, 'STREAMS', keys.stream, cursor]);
    const entries = reply?.[0]?.[1] ?? [];
    for (const [id, fields] of entries) {
      options.write(`${JSON.stringify(parseStreamEntry(id, fields))}\n`);
      cursor = id;
    }
    if (entries.length === 0 && !options.follow) return;
  }
}
