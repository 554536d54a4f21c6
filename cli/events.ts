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
  let cursor = options.from === '$' ? '$' : options.from;
  let pendingFirst = true;
  while (!options.signal?.aborted) {
    let reply: XReadReply;
    if (options.group) {
      // First our own unacknowledged entries (from a crash), then new ones.
      reply = (await redis.call(
        'XREADGROUP',
        'GROUP',
        options.group,
        options.consumer,
        'COUNT',
        100,
        ...(pendingFirst ? [] : block),
        'STREAMS',
        keys.stream,
        pendingFirst ? '0' : '>',
      )) as XReadReply;
    } else {
      reply = (await redis.call(
        'XREAD',
        'COUNT',
        100,
        ...block,
        'STREAMS',
        keys.stream,
        cursor,
      )) as XReadReply;
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
