import test from 'ava';
import { SLOT_KEEPER_DEFAULTS } from '../worker/slot-keeper.ts';
import { isFinal, queueFax, SEED_FAX, startPipeline, finalEntry } from './helpers/pipeline.ts';

const TO = '+13129457455';

test('a busy line is tried again as the policy says, each retry published, and the fax delivered once', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_RETRY_DELAY_SCALE: '0.001' },
    simulator: { stepMs: 5, callMs: 10, failFirst: { [TO]: { reason: 'user_busy', times: 2 } } },
  });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: TO });
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  const retries = entries.filter((entry) => entry.event_type === 'fax.failed');
  t.is(retries.length, 2);
  for (const [i, entry] of retries.entries()) {
    t.like(entry, { status: 'queued', final: false, attempt: i + 1, failure_reason: 'user_busy' });
  }
  // The policy's 2 and 10 minutes, scaled by 0.001: 120 ms, then 600 ms, after each failure was taken in.
  const waits = retries.map(
    (entry) => Date.parse(entry.next_attempt_at as string) - Number(entry.stream_id.split('-')[0]),
  );
  // Planned just before the failure was recorded: a little less, never more.
  t.true((waits[0] ?? 0) > 0 && (waits[0] ?? 0) <= 125, `first wait ${waits[0]} ms`);
  t.true((waits[1] ?? 0) > 400 && (waits[1] ?? 0) <= 605, `second wait ${waits[1]} ms`);
  t.is(entries.filter((entry) => entry.final).length, 1);
  t.like(finalEntry(entries), { event_type: 'fax.delivered', status: 'delivered', attempt: 3, final: true });
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 3, 'three attempts, three POSTs');

  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${id}`)).json()) as {
    data: { status: string; attempts: number; events: { next_attempt_at?: string }[] };
  };
  t.like(view.data, { status: 'delivered', attempts: 3 });
  t.is(view.data.events.filter((event) => event.next_attempt_at).length, 2, 'the history shows both retries');
});

test('a fax that keeps failing ends once the policy has no attempts left, with why', async (t) => {
  const pipeline = await startPipeline(t, {
    env: {
      FAX_RETRY_POLICY: '{"reasons": {"user_busy": {"retry": true, "delays": [0.05], "maxAttempts": 2}}}',
    },
    simulator: { stepMs: 5, callMs: 10, failures: { [TO]: 'user_busy' } },
  });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: TO });
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  t.like(finalEntry(entries), {
    event_type: 'fax.failed',
    status: 'failed',
    final: true,
    attempt: 2,
    failure_reason: 'user_busy',
    detail: 'user_busy: no attempts left (2 of 2 made)',
  });
  t.is(entries.filter((entry) => entry.final).length, 1);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 2);
});

test('while a fax waits for its next attempt, GET /v2/faxes/:id says when and why', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_RETRY_POLICY: '{"reasons": {"user_busy": {"retry": true, "delays": [30]}}}' },
    simulator: { stepMs: 5, callMs: 10, failFirst: { [TO]: { reason: 'user_busy', times: 1 } } },
  });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: TO });
  await pipeline.waitForFax(id, (entries) => entries.some((entry) => entry.event_type === 'fax.failed'));
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${id}`)).json()) as {
    data: Record<string, unknown>;
  };
  t.like(view.data, { status: 'queued', attempts: 2, last_failure_reason: 'user_busy' });
  const due = Date.parse(view.data.next_attempt_at as string);
  t.true(
    due > Date.now() + 25_000 && due < Date.now() + 31_000,
    `next attempt at ${view.data.next_attempt_at}`,
  );
  // Waiting for its retry, it can still be cancelled: it is never sent again.
  const cancelled = await fetch(`${pipeline.producerUrl}/v2/faxes/${id}/actions/cancel`, { method: 'POST' });
  t.is(cancelled.status, 202);
  t.like(finalEntry(await pipeline.waitForFax(id, isFinal)), { event_type: 'fax.cancelled', final: true });
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 1);
});

test('a fax whose time-to-live runs out while it waits for a channel is not sent, and says why', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', FAX_RETRY_POLICY: '{"ttlSeconds": 1}', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 1500 },
  });
  const first = await queueFax(pipeline, { ...SEED_FAX, to: TO });
  const late = await queueFax(pipeline, { ...SEED_FAX, to: '+13129457456' });
  t.deepEqual(await pipeline.waitForAll([first, late], 10_000), ['delivered', 'failed']);
  const entries = await pipeline.waitForFax(late, isFinal);
  t.like(finalEntry(entries), { event_type: 'fax.failed', failure_reason: 'expired', final: true });
  t.regex(finalEntry(entries)?.detail ?? '', /^not sent: its time-to-live ran out at /);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[late], undefined, 'never POSTed');
});

test('a fax waiting for a channel that never frees (limit 0) ends expired once its time-to-live runs out, and leaves the line', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '0', TELNYX_RATE_LIMIT: 'none' },
    keeper: { ...SLOT_KEEPER_DEFAULTS, intervalMs: 100, failedScanMs: 300 },
  });
  const expiring = await queueFax(pipeline, { ...SEED_FAX, to: TO, ttl_seconds: 1 });
  const staying = await queueFax(pipeline, { ...SEED_FAX, to: '+13129457456', ttl_seconds: 3600 });
  const entries = await pipeline.waitForFax(expiring, isFinal, 10_000);
  t.like(finalEntry(entries), { event_type: 'fax.failed', failure_reason: 'expired', final: true });
  t.regex(finalEntry(entries)?.detail ?? '', /while it waited for a channel$/);
  t.deepEqual(
    await pipeline.redis.zrange(pipeline.keys.slots.parked('account'), '0', '-1'),
    [staying],
    'it left the line; the other fax, within its time-to-live, waits on',
  );
  t.is(await pipeline.redis.hget(pipeline.keys.fax(staying), 'status'), 'queued');
  t.is(pipeline.simulator.lifecycle.stats.posts, 0);
});
