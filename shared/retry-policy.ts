import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * What happens after a fax fails: one table, by Telnyx's `failure_reason`, of whether it is sent
 * again, after what wait and how often; a total attempt budget and a time-to-live over everything.
 * `FAX_RETRY_POLICY` (JSON, inline or a file) overrides any part; `FAX_RETRY_DELAY_SCALE` multiplies
 * every wait and the time-to-live.
 */
const ruleSchema = z.strictObject({
  /** Send the fax again after this failure. */
  retry: z.boolean(),
  /** Seconds to wait before the 1st, 2nd, … retry; the last repeats. */
  delays: z.array(z.number().min(0)).min(1).optional(),
  /** At most this many attempts after which a fax with this failure is not sent again. */
  maxAttempts: z.number().int().min(1).optional(),
  /** Instead of `delays`: wait until this moment (the daily spend limit resets at 00:00 UTC). */
  until: z.literal('next-utc-midnight').optional(),
});

export type RetryRule = z.infer<typeof ruleSchema>;

const policySchema = z.strictObject({
  /** Delivery attempts a fax gets in all (channel-limit refusals do not count). */
  maxAttempts: z.number().int().min(1),
  /** After this many seconds from queueing, a fax is not sent again. */
  ttlSeconds: z.number().positive(),
  /** For failure reasons the table does not name. */
  default: ruleSchema,
  reasons: z.record(z.string(), ruleSchema),
});

export type RetryPolicyTable = z.infer<typeof policySchema>;

export interface RetryPolicy extends RetryPolicyTable {
  /** FAX_RETRY_DELAY_SCALE. */
  readonly scale: number;
}

const receiver: RetryRule = { retry: true, delays: [120, 600, 1800, 3600] };
const network: RetryRule = { retry: true, delays: [60, 300, 1200] };
const never: RetryRule = { retry: false };
const once: RetryRule = { retry: true, delays: [300], maxAttempts: 2 };

/** Every failure_reason Telnyx documents (../shared/telnyx/README.md), and ours. */
export const DEFAULT_RETRY_POLICY: RetryPolicyTable = {
  maxAttempts: 6,
  ttlSeconds: 48 * 3600,
  default: once,
  reasons: {
    // The receiver's side: busy, no answer, a bad line. Worth trying again, with growing waits.
    user_busy: receiver,
    receiver_no_answer: receiver,
    receiver_no_response: receiver,
    receiver_call_dropped: receiver,
    receiver_communication_error: receiver,
    receiver_recovery_on_timer_expire: receiver,
    invalid_ecm_response_from_receiver: receiver,
    fax_initial_communication_timeout: receiver,
    // The network and signalling.
    service_unavailable: network,
    destination_unreachable: network,
    fax_signaling_error: network,
    carrier_lost: network,
    sender_call_dropped: network,
    sender_communication_error: network,
    // The daily spend limit resets at 00:00 UTC.
    outbound_profile_daily_spend_limit_exceeded: { retry: true, until: 'next-utc-midnight', maxAttempts: 3 },
    // The destination: trying again will not help (a decline may be a person: once more).
    destination_invalid: never,
    receiver_unallocated_number: never,
    receiver_invalid_number_format: never,
    receiver_incompatible_destination: never,
    receiver_decline: once,
    destination_not_in_countries_whitelist: never,
    destination_not_in_service_plan: never,
    unverified_destination_not_allowed: never,
    // The account and its configuration: fail and alert.
    account_disabled: never,
    no_outbound_profile: never,
    unverified_origination_number: never,
    // The document: fix it (a download may have been a passing fault: once more).
    file_format_invalid: never,
    file_download_failed: once,
    file_size_limit_exceeded: never,
    page_count_limit_exceeded: never,
    media_processing_exception: once,
    // Cancelled on purpose.
    sender_canceled: never,
    // Ours: Telnyx refused the request, or never took it after every try of the POST.
    rejected: never,
    submission_failed: never,
    // Ours: Telnyx accepted the fax and later had no record of it; it may have been sent.
    unknown_at_telnyx: never,
  },
};

/** The defaults as they are, unscaled. */
export const defaultRetryPolicy = (): RetryPolicy => ({ ...DEFAULT_RETRY_POLICY, scale: 1 });

export class RetryPolicyError extends Error {
  readonly code = 'RETRY_POLICY_INVALID';
}

/**
 * The policy for a deployment: the defaults, with `FAX_RETRY_POLICY` (inline JSON, or a path to a JSON
 * file) laid over them — top-level fields replace, `reasons` entries replace one by one.
 */
export function loadRetryPolicy(source: string | undefined, scale: number): RetryPolicy {
  if (source === undefined) return { ...DEFAULT_RETRY_POLICY, scale };
  let text = source.trim();
  if (!text.startsWith('{')) {
    try {
      text = readFileSync(text, 'utf8');
    } catch (error) {
      throw new RetryPolicyError(`FAX_RETRY_POLICY: cannot read ${source}: ${(error as Error).message}`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RetryPolicyError(`FAX_RETRY_POLICY: not JSON: ${(error as Error).message}`);
  }
  const parsed = policySchema.partial().safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`,
    );
    throw new RetryPolicyError(`FAX_RETRY_POLICY: ${problems.join('; ')}`);
  }
  const { reasons, ...rest } = parsed.data;
  return {
    ...DEFAULT_RETRY_POLICY,
    ...rest,
    reasons: { ...DEFAULT_RETRY_POLICY.reasons, ...reasons },
    scale,
  };
}

export interface FailureFacts {
  readonly failureReason: string | undefined;
  /** Delivery attempts made so far, the failed one included (channel-limit refusals not counted). */
  readonly attempts: number;
  /** When the fax was queued, or due if scheduled (ms). */
  readonly createdAt: number;
  /** The fax's own time-to-live (`ttl_seconds`), if it has one. */
  readonly ttlSeconds?: number | undefined;
  readonly now: number;
}

/**
 * When an unsent fax expires: its own `ttl_seconds`, else the policy's (scaled), after it was queued
 * or, if scheduled, due.
 */
export function expiresAt(policy: RetryPolicy, dueAt: number, ttlSeconds?: number): number {
  return dueAt + (ttlSeconds !== undefined ? ttlSeconds * 1000 : policy.ttlSeconds * 1000 * policy.scale);
}

export type RetryPlan =
  | { readonly retry: true; readonly at: number; readonly why: string }
  | { readonly retry: false; readonly why: string };

/** Whether and when a failed fax is sent again. */
export function planRetry(policy: RetryPolicy, facts: FailureFacts): RetryPlan {
  const reason = facts.failureReason ?? 'unknown';
  const rule = policy.reasons[reason] ?? policy.default;
  if (!rule.retry) return { retry: false, why: `${reason} is not retried` };
  const allowed = Math.min(rule.maxAttempts ?? (rule.delays?.length ?? 1) + 1, policy.maxAttempts);
  if (facts.attempts >= allowed) {
    return { retry: false, why: `${reason}: no attempts left (${facts.attempts} of ${allowed} made)` };
  }
  const waitMs =
    rule.until === 'next-utc-midnight'
      ? nextUtcMidnight(facts.now) - facts.now
      : ((rule.delays ?? [60])[Math.min(facts.attempts - 1, (rule.delays ?? [60]).length - 1)] ?? 60) * 1000;
  const at = facts.now + Math.round(waitMs * policy.scale);
  if (at > expiresAt(policy, facts.createdAt, facts.ttlSeconds)) {
    return { retry: false, why: `${reason}: the next attempt would come after the fax's time-to-live` };
  }
  return {
    retry: true,
    at,
    why: `${reason}: attempt ${facts.attempts + 1} at ${new Date(at).toISOString()}`,
  };
}

function nextUtcMidnight(now: number): number {
  const date = new Date(now);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1);
}
