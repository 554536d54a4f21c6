import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError, loadConfig } from '../shared/config.ts';
import {
  DEFAULT_RETRY_POLICY,
  defaultRetryPolicy,
  planRetry,
  type RetryPolicy,
} from '../shared/retry-policy.ts';

const HOUR = 3600_000;
const now = Date.UTC(2026, 10, 27, 15, 30);
const facts = (failureReason: string, attempts = 1, createdAt = now) => ({
  failureReason,
  attempts,
  createdAt,
  now,
});

test('the table names every failure_reason Telnyx documents (../shared/telnyx/README.md)', (t) => {
  const readme = readFileSync(new URL('../../shared/telnyx/README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## failure_reason values'));
  const rows = section.split('\n').filter((line) => line.startsWith('| ') && line.includes('`'));
  const documented = rows.flatMap((row) =>
    [...(row.split('|')[2] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]),
  );
  t.true(documented.length >= 35, `found ${documented.length} reasons`);
  const capacity = [
    'connection_channel_limit_exceeded',
    'outbound_profile_channel_limit_exceeded',
    'user_channel_limit_exceeded',
  ];
  const missing = documented.filter(
    (reason) => !((reason as string) in DEFAULT_RETRY_POLICY.reasons) && !capacity.includes(reason as string),
  );
  t.deepEqual(missing, [], "channel-limit failures are the slot layer's; every other reason has an entry");
});

test('busy and no answer are retried with growing waits until the attempts run out', (t) => {
  const policy = defaultRetryPolicy();
  const waits = [1, 2, 3, 4].map((attempts) => {
    const plan = planRetry(policy, facts('user_busy', attempts));
    return plan.retry ? (plan.at - now) / 1000 : undefined;
  });
  t.deepEqual(waits, [120, 600, 1800, 3600]);
  t.like(planRetry(policy, facts('receiver_no_answer', 5)), {
    retry: false,
    why: 'receiver_no_answer: no attempts left (5 of 5 made)',
  });
});

test('invalid numbers, bad documents, account problems and cancellations are never retried', (t) => {
  for (const reason of [
    'receiver_unallocated_number',
    'destination_invalid',
    'file_format_invalid',
    'account_disabled',
    'sender_canceled',
    'rejected',
  ]) {
    t.like(
      planRetry(defaultRetryPolicy(), facts(reason)),
      { retry: false, why: `${reason} is not retried` },
      reason,
    );
  }
});

test('the daily spend limit waits for 00:00 UTC; an unknown reason is tried once more', (t) => {
  const spend = planRetry(defaultRetryPolicy(), facts('outbound_profile_daily_spend_limit_exceeded'));
  t.like(spend, { retry: true, at: Date.UTC(2026, 10, 28) });
  t.like(planRetry(defaultRetryPolicy(), facts('something_new')), { retry: true, at: now + 300_000 });
  t.like(planRetry(defaultRetryPolicy(), facts('something_new', 2)), { retry: false });
});

test('no attempt is planned past the time-to-live, and the total budget caps every reason', (t) => {
  const policy: RetryPolicy = { ...defaultRetryPolicy(), ttlSeconds: 3600, maxAttempts: 2 };
  t.like(planRetry(policy, facts('user_busy', 1, now - 59 * 60_000)), {
    retry: false,
    why: "user_busy: the next attempt would come after the fax's time-to-live",
  });
  t.like(planRetry(policy, facts('user_busy', 1)), { retry: true });
  t.like(planRetry(policy, facts('user_busy', 2)), { retry: false });
});

test('FAX_RETRY_DELAY_SCALE multiplies every wait and the time-to-live', (t) => {
  const config = loadConfig({ FAX_RETRY_DELAY_SCALE: '0.001' });
  t.like(planRetry(config.retryPolicy, facts('user_busy')), { retry: true, at: now + 120 });
  // The 48 h time-to-live is 172.8 s at this scale.
  t.like(planRetry(config.retryPolicy, facts('user_busy', 1, now - 49 * HOUR * 0.001)), { retry: false });
  t.like(planRetry(config.retryPolicy, facts('user_busy', 1, now - 47 * HOUR * 0.001)), { retry: true });
});

test('FAX_RETRY_POLICY overrides entries inline or from a file; a bad one names what is wrong', (t) => {
  const inline = loadConfig({
    FAX_RETRY_POLICY: '{"maxAttempts": 3, "reasons": {"user_busy": {"retry": false}}}',
  });
  t.is(inline.retryPolicy.maxAttempts, 3);
  t.like(planRetry(inline.retryPolicy, facts('user_busy')), { retry: false });
  t.like(planRetry(inline.retryPolicy, facts('receiver_no_answer')), { retry: true }, 'the rest stays');

  const file = join(mkdtempSync(join(tmpdir(), 'policy-')), 'retry.json');
  writeFileSync(file, JSON.stringify({ reasons: { destination_invalid: { retry: true, delays: [5] } } }));
  const fromFile = loadConfig({ FAX_RETRY_POLICY: file });
  t.like(planRetry(fromFile.retryPolicy, facts('destination_invalid')), { retry: true, at: now + 5000 });

  const bad = (value: string) =>
    t.throws(() => loadConfig({ FAX_RETRY_POLICY: value }), { instanceOf: ConfigError });
  t.regex(
    bad('{"reasons": {"user_busy": {"retry": "yes"}}}').message,
    /FAX_RETRY_POLICY: reasons\.user_busy\.retry/,
  );
  t.regex(bad('{"maxAttempts": 0}').message, /FAX_RETRY_POLICY: maxAttempts/);
  t.regex(bad('{"retries": 3}').message, /FAX_RETRY_POLICY: .*retries/);
  t.regex(bad('{not json').message, /FAX_RETRY_POLICY: not JSON/);
  t.regex(bad('/no/such/file.json').message, /FAX_RETRY_POLICY: cannot read \/no\/such\/file\.json/);
  t.regex(bad('{"reasons": {"user_busy": {"retry": true, "delays": [-1]}}}').message, /delays/);
});
