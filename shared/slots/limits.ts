import { slotArg } from './settings.ts';
import type { SlotStore } from './slots.ts';

/** What `fax limits set` can change at run time, without a restart. */
export type LimitTarget =
  | { readonly kind: 'account' }
  /** The default for every destination number (FAX_DESTINATION_CONCURRENCY). */
  | { readonly kind: 'destination' }
  | { readonly kind: 'connection'; readonly id: string }
  | { readonly kind: 'profile'; readonly id: string };

const field = (target: LimitTarget) =>
  target.kind === 'account' || target.kind === 'destination' ? target.kind : `${target.kind}:${target.id}`;

/**
 * Sets a limit (a whole number, or 'none'), or removes it (undefined: back to the environment's
 * default). Resolves to the job ids of faxes the change lets through, to be woken.
 */
export async function setLimit(
  store: SlotStore,
  target: LimitTarget,
  value: number | 'none' | undefined,
): Promise<readonly string[]> {
  return (await store.redis.setLimit(
    store.keys.slots.limits,
    slotArg(store.slots),
    field(target),
    value === undefined ? '' : String(value),
  )) as string[];
}

/** Puts a connection in an outbound profile (undefined: in none), whose limit its faxes then share. */
export async function assignProfile(
  store: SlotStore,
  connectionId: string,
  profile: string | undefined,
): Promise<readonly string[]> {
  return (await store.redis.setLimit(
    store.keys.slots.limits,
    slotArg(store.slots),
    `profile-of:${connectionId}`,
    profile ?? '',
  )) as string[];
}

export interface ScopeState {
  readonly scope: string;
  /** Set at run time or from the environment; null = no limit. */
  readonly limit: number | null;
  /** What is enforced now: lower than `limit` while Telnyx's report of a smaller limit holds. */
  readonly effective: number | null;
  readonly loweredUntil: string | null;
  readonly inFlight: number;
  readonly waiting: number;
}

export interface LimitsSnapshot {
  readonly scopes: readonly ScopeState[];
  /** Connection id → outbound profile. */
  readonly profiles: Readonly<Record<string, string>>;
}

const orNull = (limit: number) => (limit < 0 ? null : limit);

/** Every scope with a limit set or faxes holding or waiting for a slot, with its current counts. */
export async function readLimits(store: SlotStore): Promise<LimitsSnapshot> {
  const [rows, assignments] = (await store.redis.limitsSnapshot(
    store.keys.slots.limits,
    slotArg(store.slots),
  )) as [[string, number, number, number, number, number][], string[]];
  const profiles: Record<string, string> = {};
  for (let i = 0; i + 1 < assignments.length; i += 2) {
    profiles[assignments[i] as string] = assignments[i + 1] as string;
  }
  return {
    scopes: rows.map(([scope, limit, effective, loweredUntil, inFlight, waiting]) => ({
      scope,
      limit: orNull(limit),
      effective: orNull(effective),
      loweredUntil: loweredUntil > 0 ? new Date(loweredUntil).toISOString() : null,
      inFlight,
      waiting,
    })),
    profiles,
  };
}

/**
 * Publishes this process's default limits (FAX_CHANNEL_LIMIT, FAX_ACCOUNT_CHANNEL_LIMIT,
 * FAX_DESTINATION_CONCURRENCY) to Redis, where every process reads them: the latest started process's
 * environment holds for all, so workers and webhook services never enforce different defaults.
 * Resolves to the defaults it replaced that differed, for a warning.
 */
export async function publishDefaults(store: SlotStore): Promise<Record<string, string>> {
  const { defaults } = store.slots;
  const fields: Record<string, string> = {
    'default:connection': limitText(defaults.connection),
    'default:account': limitText(defaults.account),
    'default:destination': limitText(defaults.destination),
  };
  const names = Object.keys(fields);
  const before = await store.redis.hmget(store.keys.slots.limits, ...names);
  await store.redis.hset(store.keys.slots.limits, fields);
  const replaced: Record<string, string> = {};
  names.forEach((name, i) => {
    const previous = before[i];
    if (previous !== null && previous !== undefined && previous !== fields[name]) replaced[name] = previous;
  });
  return replaced;
}

const limitText = (limit: number) => (limit < 0 ? 'none' : String(limit));
