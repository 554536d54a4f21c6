import { hostname } from 'node:os';
import { parseStreamEntry, type StreamEntry } from './events.ts';
import type { Keys } from './keys.ts';
import type { FaxRedis } from './redis.ts';

export interface SubscribeOptions {
  readonly redis: FaxRedis;
  readonly keys: Keys;
  /** Consumer group: every group gets every entry; within a group, each entry goes to one consumer. */
  readonly group: string;
  /** This consumer's name in the group (default `<host>-<pid>`); keep it across restarts. */
  readonly consumer?: string;
  /**
   * Where a new group starts: `beginning`, `now` (default), a stream id, or a time (replay from then).
   * An existing group keeps its place.
   */
  readonly from?: 'beginning' | 'now' | string | Date;
  /**
   * Move an existing group to `from` as well (XGROUP SETID): replay what it has read since, or skip
   * ahead. Entries still pending stay pending (they are delivered again as usual).
   */
  readonly rewind?: boolean;
  /** Only entries this accepts are yielded; the rest are acknowledged and skipped. */
  readonly filter?: (entry: StreamEntry) => boolean;
  /** An entry delivered but not acknowledged for this long (its consumer died or failed) is taken back. */
  readonly claimIdleMs?: number;
  /** After this many deliveries without an acknowledgement, an entry goes to the dead-letter stream. */
  readonly maxDeliveries?: number;
  /** Keep waiting for new entries (default); false: stop once there is nothing more to read. */
  readonly follow?: boolean;
  readonly blockMs?: number;
  readonly signal?: AbortSignal;
}

type Raw = [string, string[]];

/**
 * The status stream through a Redis consumer group, as an async iterator. An entry is acknowledged
 * when the loop asks for the next one, so one whose handling throws — or after which the loop breaks —
 * stays pending (at-least-once):
 * after `claimIdleMs` it is delivered again — to this consumer or any other of the group, taking it
 * back from a consumer that died — and after `maxDeliveries` deliveries it is moved, acknowledged, to
 * the dead-letter stream (`<stream>:dead`) instead. Keep `claimIdleMs` above the longest handling of
 * one entry, or another consumer takes entries this one still holds (it then skips them).
 *
 * ```ts
 * for await (const entry of subscribe({ redis, keys, group: 'billing', consumer: 'billing-1' })) {
 *   if (entry.final) await chargeFor(entry.fax_id, entry.status);
 * }
 * ```
 */
export async function* subscribe(options: SubscribeOptions): AsyncGenerator<StreamEntry, void, undefined> {
  const { redis, keys, group } = options;
  const consumer = options.consumer ?? `${hostname()}-${process.pid}`;
  const claimIdleMs = options.claimIdleMs ?? 60_000;
  const maxDeliveries = options.maxDeliveries ?? 5;
  const follow = options.follow ?? true;
  await createGroup(redis, keys.stream, group, startId(options.from));
  if (options.rewind) await redis.xgroup('SETID', keys.stream, group, startId(options.from));
  /** How often each unacknowledged entry has been handed to a loop of this group. */
  const tries = keys.deliveries(group);

  let claimCursor = '0-0';
  while (!options.signal?.aborted) {
    // Entries of this group left unacknowledged for too long, by any consumer: ours now.
    const [nextCursor, claimed] = (await redis.xautoclaim(
      keys.stream,
      group,
      consumer,
      claimIdleMs,
      claimCursor,
      'COUNT',
      100,
    )) as unknown as [string, Raw[]];
    claimCursor = nextCursor;
    const taken = claimed.filter(([, fields]) => fields); // a trimmed entry comes back empty
    const batch = [...taken, ...(await readNew(follow && taken.length === 0))];
    const fetchedAt = Date.now();
    for (const [id, fields] of batch) {
      // Held long enough that another consumer may have taken it over (past claimIdleMs): ask, and
      // skip it if it is theirs now. A fresh batch is surely ours: no extra round trip per entry.
      if (Date.now() - fetchedAt >= claimIdleMs / 2 && !(await stillOurs(id))) continue;
      let entry: StreamEntry;
      let wanted: boolean;
      try {
        entry = parseStreamEntry(id, fields);
        wanted = !options.filter || options.filter(entry);
      } catch {
        // An entry that cannot even be read would come back forever.
        await deadLetter(redis, keys, group, tries, id, fields, 0);
        continue;
      }
      if (wanted) {
        // Counted when handed to the loop, so entries fetched with a failing one are not blamed.
        if ((await redis.hincrby(tries, id, 1)) > maxDeliveries) {
          await deadLetter(redis, keys, group, tries, id, fields, maxDeliveries);
          continue;
        }
        yield entry;
      }
      await redis.multi().xack(keys.stream, group, id).hdel(tries, id).exec();
    }
    if (!follow && batch.length === 0) return;
  }

  async function stillOurs(id: string): Promise<boolean> {
    const pending = (await redis.xpending(keys.stream, group, id, id, 1)) as [string, string][];
    return pending[0]?.[1] === consumer;
  }

  async function readNew(block: boolean): Promise<Raw[]> {
    // ioredis types XREADGROUP by fixed overloads; this argument list is built at run time.
    const xreadgroup = redis.xreadgroup as unknown as (...args: (string | number)[]) => Promise<unknown>;
    const reply = (await xreadgroup.call(
      redis,
      'GROUP',
      group,
      consumer,
      'COUNT',
      100,
      ...(block ? ['BLOCK', options.blockMs ?? 1000] : []),
      'STREAMS',
      keys.stream,
      '>',
    )) as [string, Raw[]][] | null;
    return reply?.[0]?.[1] ?? [];
  }
}

/** The stream id just before `from`: reading after it starts at `from`. */
export function startId(from: SubscribeOptions['from']): string {
  if (from === undefined || from === 'now') return '$';
  if (from === 'beginning') return '0';
  // Entries at that very millisecond included: start after the last id before it.
  if (from instanceof Date) return from.getTime() > 0 ? `${from.getTime() - 1}-18446744073709551615` : '0';
  return from;
}

async function createGroup(redis: FaxRedis, stream: string, group: string, start: string): Promise<void> {
  await redis.xgroup('CREATE', stream, group, start, 'MKSTREAM').catch((error: Error) => {
    if (!error.message.includes('BUSYGROUP')) throw error;
  });
}

async function deadLetter(
  redis: FaxRedis,
  keys: Keys,
  group: string,
  tries: string,
  id: string,
  fields: string[],
  maxDeliveries: number,
): Promise<void> {
  await redis
    .multi()
    .xadd(
      keys.deadLetter,
      '*',
      ...fields,
      'dead_letter_id',
      id,
      'dead_letter_group',
      group,
      'dead_letter_reason',
      maxDeliveries > 0 ? `not acknowledged after ${maxDeliveries} deliveries` : 'not a readable entry',
    )
    .xack(keys.stream, group, id)
    .hdel(tries, id)
    .exec();
}
