import { Queue } from 'bullmq';
import { FAX_QUEUE, INBOUND_QUEUE, type Keys } from '../keys.ts';
import type { FaxRedis } from '../redis.ts';
import { readLimits } from '../slots/limits.ts';
import type { SlotSettings } from '../slots/settings.ts';

/**
 * Where a process reads the pipeline's shared state from at scrape time: a connection that fails
 * fast while Redis is down (a scrape must never hang on a queued command) and the queues on it.
 */
export interface RedisStateSource {
  readonly redis: FaxRedis;
  readonly keys: Keys;
  readonly slots: SlotSettings;
  readonly queues: readonly Queue[];
}

/**
 * The pipeline's queues on one connection — fax jobs and received documents to save — for the
 * dashboard and the queue gauges; close them when done (the connection stays the caller's).
 */
export function openQueues(redis: FaxRedis, keys: Keys): Queue[] {
  return [FAX_QUEUE, INBOUND_QUEUE].map((name) => {
    const queue = new Queue(name, { connection: redis, prefix: keys.bullPrefix });
    queue.on('error', () => undefined); // the connection's owner logs Redis errors
    return queue;
  });
}

export interface ScopeGauge {
  /** `account`, `connection:<id>`, `profile:<name>`, or `destination` for all numbers together. */
  readonly scope: string;
  /** What is enforced now; undefined: no limit. For `destination`, the limit of each number. */
  readonly limit: number | undefined;
  readonly inFlight: number;
  readonly waiting: number;
}

export interface GroupGauge {
  readonly group: string;
  /** Entries the group has not been handed yet; undefined when Redis cannot tell (after trims). */
  readonly lag: number | undefined;
  /** Entries handed to a consumer and not acknowledged. */
  readonly pending: number;
}

/** One reading of what every process shares, so every scraped process reports the same values. */
export interface RedisState {
  /** BullMQ job counts by queue and state. */
  readonly jobs: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Faxes Telnyx has accepted that have not ended. */
  readonly inFlight: number;
  readonly scopes: readonly ScopeGauge[];
  readonly streamLength: number;
  readonly deadLetters: number;
  readonly groups: readonly GroupGauge[];
}

const DESTINATION = 'destination:';

/** Reads queue depth, channel slots and the stream with its consumer groups. */
export async function readRedisState(source: RedisStateSource): Promise<RedisState> {
  const { redis, keys } = source;
  const [counted, limits, counts, groups] = await Promise.all([
    Promise.all(source.queues.map(async (queue) => [queue.name, await queue.getJobCounts()] as const)),
    readLimits(source),
    redis
      .multi()
      .zcard(keys.inFlight)
      .xlen(keys.stream)
      .xlen(keys.deadLetter)
      .hmget(keys.slots.limits, 'destination', 'default:destination')
      .exec(),
    readGroups(redis, keys.stream),
  ]);
  const [inFlight, streamLength, deadLetters, destinationLimit] = (counts ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  });

  // One series per number would grow without bound: destinations are summed into one scope.
  const scopes: ScopeGauge[] = [];
  const destinations = { inFlight: 0, waiting: 0 };
  for (const state of limits.scopes) {
    if (state.scope.startsWith(DESTINATION)) {
      destinations.inFlight += state.inFlight;
      destinations.waiting += state.waiting;
      continue;
    }
    scopes.push({
      scope: state.scope,
      limit: state.effective ?? undefined,
      inFlight: state.inFlight,
      waiting: state.waiting,
    });
  }
  // Set at run time, else the default every process published, else this process's environment.
  const [setLimit, published] = (destinationLimit ?? []) as (string | null)[];
  const perNumber = setLimit ?? published ?? String(source.slots.defaults.destination);
  scopes.push({
    scope: 'destination',
    limit: perNumber === 'none' || Number(perNumber) < 0 ? undefined : Number(perNumber),
    ...destinations,
  });
  return {
    jobs: Object.fromEntries(counted),
    inFlight: Number(inFlight ?? 0),
    scopes,
    streamLength: Number(streamLength ?? 0),
    deadLetters: Number(deadLetters ?? 0),
    groups,
  };
}

async function readGroups(redis: FaxRedis, stream: string): Promise<GroupGauge[]> {
  let raw: unknown[][];
  try {
    raw = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  } catch (error) {
    // No stream yet: no groups.
    if (/no such key/i.test(String((error as Error).message))) return [];
    throw error;
  }
  return raw.map((flat) => {
    const fields: Record<string, unknown> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[String(flat[i])] = flat[i + 1];
    const lag = fields.lag;
    return {
      group: String(fields.name),
      lag: lag === null || lag === undefined ? undefined : Number(lag),
      pending: Number(fields.pending ?? 0),
    };
  });
}
