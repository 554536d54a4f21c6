import test, { type ExecutionContext } from 'ava';
import { applyEvent, type FaxEvent, newEventId, parseStreamEntry } from '../shared/events.ts';
import { readFaxRecord } from '../shared/fax-record.ts';
import { connectRedis, redisNowMs } from '../shared/redis.ts';
import { assignProfile, readLimits, setLimit } from '../shared/slots/limits.ts';
import type { SlotSettings } from '../shared/slots/settings.ts';
import { acquireSlots, failedPost, handBack, holdUntil, slotTick, stampPost } from '../shared/slots/slots.ts';
import { createRateLimiter } from '../worker/rate-limiter.ts';
import { storeFax } from './helpers/records.ts';
import type { FaxPriority } from '../shared/priority.ts';
import { testSink } from './helpers/redis.ts';

async function setup(t: ExecutionContext, env: Record<string, string>, tweak: Partial<SlotSettings> = {}) {
  const { url, redis, keys, sink } = await testSink(t, env, tweak);

  /** A stored fax, not yet holding anything. */
  async function fax(
    to: string,
    connection = 'c1',
    priority?: FaxPriority,
    createdAt = new Date(),
  ): Promise<string> {
    const faxId = newEventId();
    const request = { connection_id: connection, to, from: '+19459457421', media_url: 'https://e.com/a.pdf' };
    await storeFax(sink, faxId, priority ? { ...request, priority } : request, createdAt);
    return faxId;
  }

  const acquire = (faxId: string, attempt = 1) =>
    acquireSlots(sink, { faxId, jobId: `job-${faxId}`, attempt, rateIntervalMs: 0, run: `run-${faxId}` });

  const webhook = (
    faxId: string,
    eventType: string,
    status: FaxEvent['status'],
    extra: Partial<FaxEvent> = {},
  ) =>
    applyEvent(sink, {
      eventId: newEventId(),
      eventType,
      faxId,
      status,
      attempt: 1,
      occurredAt: new Date().toISOString(),
      telnyxFaxId: `tx-${faxId}`,
      direction: 'outbound',
      payload: {},
      dedupe: true,
      ...extra,
    });

  const held = (scope: string) => redis.zcard(keys.slots.held(scope));
  const entries = async () =>
    ((await redis.xrange(keys.stream, '-', '+')) as [string, string[]][]).map(([id, f]) =>
      parseStreamEntry(id, f),
    );
  return { url, redis, keys, sink, fax, acquire, webhook, held, entries };
}

const D1 = '+13125550101';
const D2 = '+13125550102';
const D3 = '+13125550103';
const D4 = '+13125550104';

test('a fax takes a slot in every scope or in none', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1', FAX_DESTINATION_CONCURRENCY: '1' });
  const a = await s.fax(D1, 'c1');
  const b = await s.fax(D2, 'c2');
  t.like(await s.acquire(a), { kind: 'held' });
  // b's destination and connection are free; the account, checked last, is full.
  t.like(await s.acquire(b), { kind: 'parked', scope: 'account' });
  t.is(await s.held(`destination:${D2}`), 0, 'the parked fax took no destination slot');
  t.is(await s.held('connection:c2'), 0, 'nor a connection slot');
  t.deepEqual(await s.redis.zrange(s.keys.slots.held('account'), '0', '-1'), [a]);
  t.is(await s.redis.hget(s.keys.fax(b), 'slots'), null);
});

test("nothing is taken for a fax that is no longer queued at the job's attempt", async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '5' });
  const a = await s.fax(D1);
  await s.acquire(a);
  await s.webhook(a, 'fax.delivered', 'delivered');
  t.like(await s.acquire(a), { kind: 'moved-on', status: 'delivered' });
  t.like(await s.acquire('no-such-fax'), { kind: 'unknown' });
  t.is(await s.held('account'), 0);
});

test('a job redelivered for a fax that holds its slots keeps them and takes no more', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1' });
  const a = await s.fax(D1);
  t.like(await s.acquire(a), { kind: 'held' });
  t.like(await s.acquire(a), { kind: 'held' });
  t.is(await s.held('account'), 1);
});

test('a full scope does not hold up faxes for other, free scopes', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '10', FAX_CHANNEL_LIMIT: '1' });
  const a = await s.fax(D1, 'c1');
  const b = await s.fax(D2, 'c1');
  const c = await s.fax(D3, 'c2');
  t.like(await s.acquire(a), { kind: 'held' });
  t.like(await s.acquire(b), { kind: 'parked', scope: 'connection:c1' });
  t.like(await s.acquire(c), { kind: 'held' }, 'another connection is not held up');
});

test('waiting faxes keep their turn: a release wakes the first in line, and a newcomer cannot take the slot it is owed', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1' });
  const [a, b, c, d] = [await s.fax(D1), await s.fax(D2), await s.fax(D3), await s.fax(D4)];
  await s.acquire(a);
  t.like(await s.acquire(b), { kind: 'parked', scope: 'account' });
  t.like(await s.acquire(c), { kind: 'parked', scope: 'account' });
  const released = await s.webhook(a, 'fax.delivered', 'delivered');
  t.deepEqual(released.wake, [`job-${b}`], 'exactly the first waiting fax is woken for the one free slot');
  t.is(await s.held('account'), 0);
  t.like(await s.acquire(d), { kind: 'parked' }, 'a newcomer waits behind the woken fax');
  t.like(await s.acquire(c), { kind: 'parked' }, 'so does the second in line');
  t.like(await s.acquire(b), { kind: 'held' });
  t.deepEqual(await s.redis.zrange(s.keys.slots.parked('account'), '0', '-1'), [c, d], 'order kept');
});

test('urgent faxes go ahead in a line, yet a bulk fax that has waited longer than its head start goes first', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1' });
  const a = await s.fax(D1);
  const bulk = await s.fax(D2, 'c1', 'bulk');
  const normal = await s.fax(D3, 'c1', 'normal');
  const high = await s.fax(D4, 'c1', 'high');
  const oldBulk = await s.fax('+13125550105', 'c1', 'bulk', new Date(Date.now() - 11 * 60_000));
  for (const faxId of [a, bulk, normal, high, oldBulk]) await s.acquire(faxId);
  t.deepEqual(await s.redis.zrange(s.keys.slots.parked('account'), '0', '-1'), [oldBulk, high, normal, bulk]);
});

test('a duplicate or late terminal webhook frees nothing twice', async (t) => {
  // No wake de-duplication: a second release would wake a second fax.
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '2' }, { wakeRetryMs: 0 });
  const [a, b, c, d] = [await s.fax(D1), await s.fax(D2), await s.fax(D3), await s.fax(D4)];
  await s.acquire(a);
  await s.acquire(b);
  await s.acquire(c);
  await s.acquire(d);
  const eventId = newEventId();
  const first = await s.webhook(a, 'fax.delivered', 'delivered', { eventId });
  t.deepEqual(first.wake, [`job-${c}`]);
  const duplicate = await s.webhook(a, 'fax.delivered', 'delivered', { eventId });
  const late = await s.webhook(a, 'fax.failed', 'failed', { failureReason: 'user_busy' });
  t.is(duplicate.outcome, 'duplicate');
  t.is(late.outcome, 'published');
  t.deepEqual([...duplicate.wake, ...late.wake], [], 'nobody else is woken');
  t.deepEqual(await s.redis.zrange(s.keys.slots.held('account'), '0', '-1'), [b]);
});

test("news of an old attempt's call never frees or redirects the new attempt's slots", async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '5' });
  const a = await s.fax(D1);
  await s.acquire(a);
  await s.webhook(a, 'fax.failed', 'failed', {
    failureReason: 'user_channel_limit_exceeded',
    telnyxFaxId: 'old',
  });
  t.like(await s.acquire(a, 2), { kind: 'held' });
  // Late news of attempt 1's call: its own 202 recorded late, a reordered webhook, a final one.
  await s.webhook(a, 'fax.submitted', 'submitted', { telnyxFaxId: 'old' });
  await s.webhook(a, 'fax.sending.started', 'sending', { telnyxFaxId: 'old' });
  await s.webhook(a, 'fax.delivered', 'delivered', { telnyxFaxId: 'old' });
  t.is(await s.held('account'), 1, 'attempt 2 still holds its slot');
  t.like(await readFaxRecord(s.redis, s.keys, a), { status: 'queued', attempt: 2, telnyxFaxId: undefined });
  await s.webhook(a, 'fax.submitted', 'submitted', { telnyxFaxId: 'new', attempt: 2 });
  t.like(await readFaxRecord(s.redis, s.keys, a), { status: 'submitted', telnyxFaxId: 'new' });
});

test('a fax that ends while waiting leaves the line and wakes the next', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1' });
  const [a, b, c] = [await s.fax(D1), await s.fax(D2), await s.fax(D3)];
  await s.acquire(a);
  await s.acquire(b);
  await s.acquire(c);
  await s.webhook(a, 'fax.delivered', 'delivered');
  // b was woken for a's slot; it ends (cancelled, say) before taking it: c is owed the slot now.
  const ended = await s.webhook(b, 'fax.failed', 'failed', { failureReason: 'sender_canceled' });
  t.deepEqual(ended.wake, [`job-${c}`]);
  t.deepEqual(await s.redis.zrange(s.keys.slots.parked('account'), '0', '-1'), [c]);
});

test('a final failure that keeps its slots holds them until a final webhook of the same attempt', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1' });
  const [a, b] = [await s.fax(D1), await s.fax(D2)];
  await s.acquire(a);
  await s.acquire(b);
  const failed = await s.webhook(a, 'fax.failed', 'failed', {
    failureReason: 'submission_failed',
    keepSlots: true,
    dedupe: false,
  });
  t.true(failed.final);
  t.deepEqual(failed.wake, []);
  t.is(await s.held('account'), 1, 'the call the POST may have created still counts');
  const progress = await s.webhook(a, 'fax.sending.started', 'sending');
  t.deepEqual(progress.wake, [], 'its call goes on');
  const end = await s.webhook(a, 'fax.delivered', 'delivered');
  t.deepEqual(end.wake, [`job-${b}`], "that call's end frees the slot");
  t.is(await s.held('account'), 0);
  t.like(await readFaxRecord(s.redis, s.keys, a), { status: 'failed' });
});

test("a connection moved to another profile takes its calls in flight along, and its waiting faxes leave the old profile's line", async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '10' });
  await setLimit(s.sink, { kind: 'profile', id: 'p1' }, 1);
  await setLimit(s.sink, { kind: 'profile', id: 'p2' }, 1);
  await assignProfile(s.sink, 'c1', 'p1');
  const [a, b] = [await s.fax(D1, 'c1'), await s.fax(D2, 'c1')];
  await s.acquire(a);
  t.like(await s.acquire(b), { kind: 'parked', scope: 'profile:p1' });
  const wake = await assignProfile(s.sink, 'c1', 'p2');
  t.true(wake.includes(`job-${b}`), 'b no longer needs p1');
  t.is(await s.held('profile:p1'), 0);
  t.deepEqual(
    await s.redis.zrange(s.keys.slots.held('profile:p2'), '0', '-1'),
    [a],
    "a's call counts against p2",
  );
  t.like(await s.acquire(b), { kind: 'parked', scope: 'profile:p2' }, 'p2 is full with a');
  await s.webhook(a, 'fax.delivered', 'delivered');
  t.is(await s.held('profile:p2'), 0, 'released from the profile it was moved to');
});

test('the keeper queues a next attempt nobody queued and wakes faxes a raised limit lets through', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1' }, { outboxGraceMs: 1000, capacityRetryMs: 0 });
  const [a, b, c] = [await s.fax(D1, 'c9'), await s.fax(D2), await s.fax(D3)];
  await s.acquire(a);
  await s.acquire(b);
  await s.acquire(c);
  // a's account slot goes to b, the first in line; c waits on. (Only connection c9 is lowered.)
  const failed = await s.webhook(a, 'fax.failed', 'failed', {
    failureReason: 'connection_channel_limit_exceeded',
  });
  t.deepEqual(failed.wake, [`job-${b}`]);
  t.deepEqual((await slotTick(s.sink, 10, 1)).unqueued, [], 'the handoff gets the grace period first');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  // Raised behind the scripts' back: only the sweep can notice.
  await s.redis.hset(s.keys.slots.limits, 'account', '3');
  const tick = await slotTick(s.sink, 10, 1);
  // Nothing here queues jobs: a's next attempt, and b's and c's first, are all the keeper's to queue.
  t.deepEqual(
    tick.unqueued.map(({ faxId, attempt }) => `${faxId}#${attempt}`).sort(),
    [`${a}#2`, `${b}#1`, `${c}#1`].sort(),
  );
  t.deepEqual(tick.wake, [`job-${c}`], 'b was woken already');
  t.deepEqual((await slotTick(s.sink, 10, 1000)).unqueued, [], 'claimed for another grace period');
});

test('a lease is extended by progress webhooks and expires into one keeper round', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '2', FAX_SLOT_LEASE_SECONDS: '1' });
  const a = await s.fax(D1);
  await s.acquire(a);
  const serverNow = await redisNowMs(s.redis);
  const lease = Number(await s.redis.zscore(s.keys.slots.leases, a));
  t.true(Math.abs(lease - (serverNow + 1000)) < 200, 'lease = now + FAX_SLOT_LEASE_SECONDS');
  t.deepEqual((await slotTick(s.sink, 10, 5000)).expired, []);
  await new Promise((resolve) => setTimeout(resolve, 600));
  await s.webhook(a, 'fax.sending.started', 'sending');
  const extended = Number(await s.redis.zscore(s.keys.slots.leases, a));
  t.true(extended >= lease + 500, 'progress extends the lease');
  // Past the first lease, before the extended one.
  while (Date.now() < lease + 100) await new Promise((resolve) => setTimeout(resolve, 20));
  if (Date.now() < extended - 50) {
    t.deepEqual((await slotTick(s.sink, 10, 5000)).expired, [], 'not yet: it was extended');
  }
  while (Date.now() < extended + 50) await new Promise((resolve) => setTimeout(resolve, 20));
  t.deepEqual((await slotTick(s.sink, 10, 5000)).expired, [a]);
  t.deepEqual((await slotTick(s.sink, 10, 5000)).expired, [], 'claimed: a second worker does not get it too');
});

test("a channel-limit failure lowers that scope's limit, frees the slot and queues the fax again as the next attempt", async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '10', FAX_CHANNEL_LIMIT: '4' });
  const faxes = [await s.fax(D1), await s.fax(D2), await s.fax(D3)];
  for (const faxId of faxes) await s.acquire(faxId);
  const c = faxes[2] as string;
  const result = await s.webhook(c, 'fax.failed', 'failed', {
    failureReason: 'connection_channel_limit_exceeded',
  });
  t.is(result.requeuedAttempt, 2);
  t.deepEqual(result.lowered, { scope: 'connection:c1', limit: 2 });
  t.false(result.final);
  const record = await readFaxRecord(s.redis, s.keys, c);
  t.like(record, { status: 'queued', attempt: 2, telnyxFaxId: undefined });
  t.is(await s.held('connection:c1'), 2);
  t.not(await s.redis.zscore(s.keys.slots.outbox, c), null, 'the next attempt is in the outbox until queued');
  const entries = await s.entries();
  t.like(
    entries.find((e) => e.event_type === 'fax.failed'),
    {
      fax_id: c,
      status: 'queued',
      final: false,
      attempt: 1,
      failure_reason: 'connection_channel_limit_exceeded',
    },
  );
  const lowered = entries.find((e) => e.event_type === 'fax.channel_limit.lowered');
  t.like(lowered?.payload, { scope: 'connection:c1', limit: 2, configured_limit: 4, fax_id: c });
  const snapshot = await readLimits(s.sink);
  const connection = snapshot.scopes.find((scope) => scope.scope === 'connection:c1');
  t.like(connection, { limit: 4, effective: 2, inFlight: 2 });
  t.truthy(connection?.loweredUntil);
  const d = await s.fax(D4);
  t.like(await s.acquire(d), { kind: 'parked', scope: 'connection:c1' }, 'the lowered limit holds');
});

test("a fax that keeps hitting channel limits fails with Telnyx's reason after the last capacity retry", async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '10' }, { maxCapacityRetries: 1 });
  const a = await s.fax(D1);
  await s.acquire(a);
  const first = await s.webhook(a, 'fax.failed', 'failed', { failureReason: 'user_channel_limit_exceeded' });
  t.is(first.requeuedAttempt, 2);
  t.like(
    await s.acquire(a),
    { kind: 'moved-on', status: 'queued', attempt: 2 },
    'the old attempt sends nothing',
  );
  t.like(await s.acquire(a, 2), { kind: 'held' });
  const second = await s.webhook(a, 'fax.failed', 'failed', {
    failureReason: 'user_channel_limit_exceeded',
    attempt: 2,
  });
  t.is(second.requeuedAttempt, undefined);
  t.true(second.final);
  t.like(await readFaxRecord(s.redis, s.keys, a), {
    status: 'failed',
    failureReason: 'user_channel_limit_exceeded',
  });
  t.is(await s.held('account'), 0);
});

test('a limit changed at run time applies at once and wakes the faxes it lets through', async (t) => {
  const s = await setup(t, { FAX_ACCOUNT_CHANNEL_LIMIT: '1' });
  const [a, b, c] = [await s.fax(D1), await s.fax(D2), await s.fax(D3)];
  await s.acquire(a);
  await s.acquire(b);
  await s.acquire(c);
  t.deepEqual(await setLimit(s.sink, { kind: 'account' }, 3), [`job-${b}`, `job-${c}`]);
  t.like(await s.acquire(b), { kind: 'held' });
  t.like(
    (await readLimits(s.sink)).scopes.find((scope) => scope.scope === 'account'),
    {
      limit: 3,
      effective: 3,
      inFlight: 2,
      waiting: 1,
    },
  );
  await setLimit(s.sink, { kind: 'account' }, 0);
  const d = await s.fax(D4);
  t.like(await s.acquire(d), { kind: 'parked', scope: 'account' }, '0 sends nothing');
});

test('the shared rate limiter spaces requests evenly and a 429 pause holds everyone back', async (t) => {
  const s = await setup(t, {});
  const other = connectRedis(s.url);
  t.teardown(() => other.disconnect());
  const limiters = [createRateLimiter(s.redis, s.keys, 50), createRateLimiter(other, s.keys, 50)];
  const started = performance.now();
  const done: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      await limiters[i % 2]?.take();
      done.push(performance.now() - started);
    }),
  );
  done.sort((x, y) => x - y);
  t.true((done[9] ?? 0) >= 9 * 20 - 5, `ten requests at 50/s take at least 180 ms (took ${done[9]})`);
  await limiters[0]?.pause(300);
  const before = performance.now();
  await limiters[1]?.take();
  t.true(performance.now() - before >= 280, 'a pause set by one process holds back another');
});

test('only the run the submitting mark names may POST or give the attempt back; a run that takes the job over asks Telnyx first', async (t) => {
  const { sink } = await testSink(t, {});
  const faxId = newEventId();
  const request = {
    connection_id: 'c1',
    to: '+13125550101',
    from: '+19459457421',
    media_url: 'https://e.com/a.pdf',
  };
  await storeFax(sink, faxId, request, new Date());
  const claim = (run: string) =>
    acquireSlots(sink, { faxId, jobId: faxId, attempt: 1, rateIntervalMs: 0, run });
  t.is((await claim('a')).kind, 'held'); // run A claims, then stalls: its lock runs out
  const b = await claim('b'); // the job redelivered: run B takes the mark over, with A's time
  t.true(b.kind === 'held' && b.interruptedAt !== undefined, 'B asks Telnyx before sending');
  t.is(await stampPost(sink, faxId, 1, 'a'), 'superseded', 'A, waking, may not POST');
  t.is(await stampPost(sink, faxId, 1, 'b'), 'post');
  // A wakes into a shutdown and tries to give the attempt back: nothing changes.
  t.deepEqual(await handBack(sink, faxId, 1, 'a'), []);
  t.is(
    await holdUntil(sink, faxId, 1, Date.now() + 60_000, 'a').then(() =>
      sink.redis.hget(sink.keys.fax(faxId), 'hold_until'),
    ),
    null,
  );
  t.is(await failedPost(sink, faxId, 1, 'a', 1000), undefined);
  t.is(await sink.redis.zcard(sink.keys.slots.leases), 1, "B's slots are still held");
  // Nor may A fail the fax (its time-to-live ran out while it was frozen, say): B decides.
  const verdict = await applyEvent(sink, {
    eventId: newEventId(),
    eventType: 'fax.failed',
    faxId,
    attempt: 1,
    status: 'failed',
    failureReason: 'expired',
    occurredAt: new Date().toISOString(),
    direction: 'outbound',
    payload: {},
    dedupe: false,
    onlyIfRun: 'a',
  });
  t.is(verdict.outcome, 'refused');
  t.is(await sink.redis.hget(sink.keys.fax(faxId), 'status'), 'queued');
  // B's POST timed out (ambiguous): its next run must ask Telnyx about it, not send blind.
  t.is(await failedPost(sink, faxId, 1, 'b', 1000), 1);
  const c = await claim('c');
  t.true(c.kind === 'held' && c.interruptedAt !== undefined && c.lookupAfter > 0);
  // A worker of an earlier version, which knows nothing of runs, takes the job over and rewrites the
  // mark: C no longer owns it, and sends nothing.
  await sink.redis.hset(sink.keys.fax(faxId), 'submitting', `1:${Date.now() + 5}`);
  t.is(await stampPost(sink, faxId, 1, 'c'), 'superseded');
});
