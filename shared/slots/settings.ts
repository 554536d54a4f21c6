import { type Env, loadConfig } from '../config.ts';
import { type FaxPriority, PRIORITY_DELAY_MS } from '../priority.ts';

/** A limit as the scripts take it: a whole number, or -1 for none. */
export type Limit = number;
export const UNLIMITED: Limit = -1;

/** How the slot scripts behave; passed to each as one JSON argument. */
export interface SlotSettings {
  /** FAX_KEY_PREFIX: the scripts build their key names from it. */
  readonly prefix: string;
  /** Limits when none is set at run time (`fax limits set`). */
  readonly defaults: { readonly connection: Limit; readonly account: Limit; readonly destination: Limit };
  /** A slot without news for this long is reconciled with Telnyx. */
  readonly leaseMs: number;
  /** How long a lease being reconciled is left alone before another worker may try. */
  readonly claimMs: number;
  /** How long a lowered limit stays lowered. */
  readonly lowerMs: number;
  /** Wait before a fax that hit a channel limit is sent again. */
  readonly capacityRetryMs: number;
  /** A fax that hits channel limits this many times fails with Telnyx's reason. */
  readonly maxCapacityRetries: number;
  /** A woken fax that has not taken its slot after this long is woken again. */
  readonly wakeRetryMs: number;
  /** An outbox entry not cleared after this long is handed to the queue by the slot keeper. */
  readonly outboxGraceMs: number;
  /** Head start in a line by priority: a fax is ordered as if it had arrived this much later. */
  readonly priorityDelayMs: Readonly<Record<FaxPriority, number>>;
}

export const limitOf = (value: number | 'none'): Limit => (value === 'none' ? UNLIMITED : value);

export function slotSettings(env: Env, prefix: string): SlotSettings {
  return Object.freeze({
    prefix,
    defaults: Object.freeze({
      connection: limitOf(env.FAX_CHANNEL_LIMIT),
      account: limitOf(env.FAX_ACCOUNT_CHANNEL_LIMIT),
      destination: limitOf(env.FAX_DESTINATION_CONCURRENCY),
    }),
    leaseMs: Math.round(env.FAX_SLOT_LEASE_SECONDS * 1000),
    claimMs: Math.min(60_000, Math.round(env.FAX_SLOT_LEASE_SECONDS * 1000)),
    lowerMs: Math.round(env.FAX_LIMIT_BACKOFF_SECONDS * 1000),
    capacityRetryMs: Math.max(1, Math.round(1000 * env.FAX_RETRY_DELAY_SCALE)),
    maxCapacityRetries: 20,
    wakeRetryMs: 5000,
    outboxGraceMs: 10_000,
    priorityDelayMs: PRIORITY_DELAY_MS,
  });
}

/** The settings as the scripts' JSON argument (cached per settings object). */
const encoded = new WeakMap<SlotSettings, string>();
export function slotArg(settings: SlotSettings): string {
  let json = encoded.get(settings);
  if (json === undefined) {
    json = JSON.stringify(settings);
    encoded.set(settings, json);
  }
  return json;
}

/** The settings an empty environment gives: for library callers that pass none. */
export function defaultSlotSettings(prefix: string): SlotSettings {
  return slotSettings(loadConfig({}).env, prefix);
}
