import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { Queue } from 'bullmq';
import { releaseToSend } from '../bench/stats.ts';
import { assignProfile, readLimits, setLimit } from '../shared/slots/limits.ts';
import { FAX_QUEUE } from '../shared/keys.ts';
import type { SlotStore } from '../shared/slots/slots.ts';
import { queueFax, queueFaxes, SEED_FAX, startPipeline, type TestPipeline } from './helpers/pipeline.ts';
import { FAX_CLI, startFaxProcess } from './helpers/processes.ts';
import { until } from './helpers/until.ts';

const run = promisify(execFile);

const store = (pipeline: TestPipeline): SlotStore => ({
  redis: pipeline.redis,
  keys: pipeline.keys,
  slots: pipeline.runtime.slots,
});

/** A valid North American number per index, so destinations repeat every `distinct` faxes. */
const destination = (i: number, distinct: number) => `+1312945${String(7000 + (i % distinct))}`;

test('three worker processes and a backlog of 300 faxes: no scope over its limit, every channel used, each fax sent once', async (t) => {
  const limits = {
    FAX_ACCOUNT_CHANNEL_LIMIT: '6',
    FAX_CHANNEL_LIMIT: '3',
    FAX_DESTINATION_CONCURRENCY: '1',
    TELNYX_RATE_LIMIT: 'none',
  };
  const pipeline = await startPipeline(t, {
    worker: false,
    env: limits,
    simulator: {
      stepMs: 10,
      callMs: 40,
      accountChannelLimit: 6,
      channelLimit: 3,
      connectionChannelLimits: { c3: 2 },
      outboundProfiles: { p1: { limit: 4, connections: ['c2', 'c3'] } },
    },
  });
  await setLimit(store(pipeline), { kind: 'connection', id: 'c3' }, 2);
  await setLimit(store(pipeline), { kind: 'profile', id: 'p1' }, 4);
  await assignProfile(store(pipeline), 'c2', 'p1');
  await assignProfile(store(pipeline), 'c3', 'p1');

  const connections = ['c1', 'c2', 'c3'];
  const ids = await queueFaxes(pipeline, 300, (i) => ({
    connection_id: connections[i % 3],
    to: destination(i, 50),
  }));
  const env = { ...pipeline.env, ...limits, FAX_WEBHOOK_URL: pipeline.webhookUrl };
  await Promise.all([1, 2, 3].map(() => startFaxProcess(t, 'worker', env, 'worker running')));

  const statuses = await pipeline.waitForAll(ids, 50_000);
  t.deepEqual(new Set(statuses), new Set(['delivered']));
  const stats = pipeline.simulator.lifecycle.stats;
  t.deepEqual(stats.failuresByReason, {}, 'no fax hit a Telnyx channel limit');
  t.is(stats.delivered, 300);
  t.is(stats.maxInFlight, 6, 'the account limit was reached: its channels were all used');
  // Demand counts every call asked for, refused or not: over a limit shows here.
  t.is(stats.maxDemand, 6, 'the account limit was never passed');
  t.true((stats.maxDemandByConnection.c1 ?? 0) <= 3, JSON.stringify(stats.maxDemandByConnection));
  t.true((stats.maxDemandByConnection.c2 ?? 0) <= 3);
  t.true((stats.maxDemandByConnection.c3 ?? 0) <= 2);
  t.true((stats.maxDemandByProfile.p1 ?? 0) <= 4, JSON.stringify(stats.maxDemandByProfile));
  t.is(stats.maxDemandPerDestination, 1, 'one call at a time to a destination');
  t.deepEqual(new Set(Object.values(stats.postsByFax)), new Set([1]), 'every fax POSTed exactly once');
  t.is(Object.keys(stats.postsByFax).length, 300);
  const after = await readLimits(store(pipeline));
  t.true(
    after.scopes.every((scope) => scope.inFlight === 0 && scope.waiting === 0),
    'every slot came back',
  );
});

test('a fax waiting for a slot is sent the moment one frees, without waiting for the slot keeper', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '2', TELNYX_RATE_LIMIT: 'none' },
    // Calls long enough that the backlog is queued while the first two are on the line.
    simulator: { stepMs: 5, callMs: 300, accountChannelLimit: 2, recordTimes: true },
    // The keeper would only act after a minute: every dispatch here comes from a release.
    keeper: { intervalMs: 60_000, batch: 50, sweepMs: 60_000 },
  });
  const ids = await queueFaxes(pipeline, 20, (i) => ({ to: destination(i, 30) }));
  const statuses = await pipeline.waitForAll(ids, 20_000);
  t.deepEqual(new Set(statuses), new Set(['delivered']));
  const stats = pipeline.simulator.lifecycle.stats;
  t.is(stats.maxDemand, 2);
  // Every call's end is followed by the next POST long before the keeper's minute: no poll did it.
  const gaps = releaseToSend(stats.callEndTimes.slice(0, -2), stats.postTimes.slice(2));
  t.is(gaps.length, 18);
  t.true(Math.max(...gaps) < 5000, `slowest release → next POST: ${Math.max(...gaps)} ms`);
});

test('a full connection does not hold up faxes for another connection', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '10', FAX_CHANNEL_LIMIT: '1', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 4000, channelLimit: 1 },
  });
  const busy = await queueFaxes(pipeline, 3, (i) => ({ connection_id: 'c1', to: destination(i, 10) }));
  const other = await queueFax(pipeline, { ...SEED_FAX, connection_id: 'c2', to: destination(5, 10) });
  // Every call lasts 4 s: c2's fax must be on the line while c1's first call still holds c1.
  await pipeline.waitForFax(other, (entries) => entries.some((entry) => entry.status === 'sending'), 3000);
  const statuses = await Promise.all(busy.map((id) => pipeline.redis.hget(pipeline.keys.fax(id), 'status')));
  t.is(statuses.filter((status) => status === 'queued').length, 2, `c1's backlog still waits: ${statuses}`);
  t.deepEqual(pipeline.simulator.lifecycle.stats.failuresByReason, {});
  t.is(pipeline.simulator.lifecycle.stats.maxDemandByConnection.c1, 1);
});

test("a lost terminal webhook: the lease runs out, Telnyx is asked, the fax's real outcome is published and its slot comes back", async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', FAX_SLOT_LEASE_SECONDS: '1', TELNYX_RATE_LIMIT: 'none' },
    simulator: {
      stepMs: 5,
      callMs: 20,
      accountChannelLimit: 1,
      dropTerminalWebhooks: true,
      failures: { [destination(1, 10)]: 'receiver_unallocated_number' },
    },
  });
  const ids = await queueFaxes(pipeline, 2, (i) => ({ to: destination(i, 10) }));
  const statuses = await pipeline.waitForAll(ids, 15_000);
  t.deepEqual(statuses, ['delivered', 'failed']);
  const entries = await pipeline.entries();
  for (const [i, id] of ids.entries()) {
    const last = entries.filter((entry) => entry.fax_id === id).at(-1);
    t.like(last, { event_type: 'fax.reconciled', final: true, status: i === 0 ? 'delivered' : 'failed' });
  }
  t.like(
    entries.find((entry) => entry.fax_id === ids[1] && entry.final),
    { failure_reason: 'receiver_unallocated_number' },
  );
  t.is(pipeline.simulator.lifecycle.stats.maxDemand, 1);
  t.deepEqual(pipeline.simulator.lifecycle.stats.failuresByReason, { receiver_unallocated_number: 1 });
});

test('a fax Telnyx no longer knows when its lease runs out ends failed (unknown_at_telnyx), once, never sent again, and its channel goes to the next', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', FAX_SLOT_LEASE_SECONDS: '0.5', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 200, dropTerminalWebhooks: true },
  });
  const ids = await queueFaxes(pipeline, 2, (i) => ({ to: destination(i, 10) }));
  const [first, second] = ids as [string, string];
  const submitted = await pipeline.waitForFax(first, (entries) =>
    entries.some((e) => e.telnyx_fax_id !== ''),
  );
  // Gone at Telnyx (deleted there) before anyone learnt how it ended.
  const telnyxId = submitted.find((e) => e.telnyx_fax_id !== '')?.telnyx_fax_id as string;
  const deleted = await fetch(`${pipeline.simulatorUrl}/v2/faxes/${telnyxId}`, {
    method: 'DELETE',
    headers: { authorization: 'Bearer test-key' },
  });
  t.is(deleted.status, 204);
  t.deepEqual(await pipeline.waitForAll(ids, 20_000), ['failed', 'delivered']);
  const entries = (await pipeline.entries()).filter((entry) => entry.fax_id === first);
  t.like(entries.at(-1), {
    event_type: 'fax.reconciled',
    final: true,
    status: 'failed',
    failure_reason: 'unknown_at_telnyx',
  });
  t.is(entries.filter((entry) => entry.final).length, 1);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[first], 1, 'not sent again: it may have been');
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[second], 1);
});

test('a lease that runs out while the call goes on is renewed, not freed', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', FAX_SLOT_LEASE_SECONDS: '0.5', TELNYX_RATE_LIMIT: 'none' },
    // A call far longer than the lease, so that it is asked about mid-call even on a loaded machine.
    simulator: { stepMs: 5, callMs: 4000, accountChannelLimit: 1 },
  });
  const ids = await queueFaxes(pipeline, 2, (i) => ({ to: destination(i, 10) }));
  const statuses = await pipeline.waitForAll(ids, 20_000);
  t.deepEqual(statuses, ['delivered', 'delivered']);
  const stats = pipeline.simulator.lifecycle.stats;
  t.deepEqual(
    stats.failuresByReason,
    {},
    'the second fax was not sent while the first still held the channel',
  );
  t.is(stats.maxDemand, 1);
  const reconciled = (await pipeline.entries()).filter((entry) => entry.event_type === 'fax.reconciled');
  t.true(
    reconciled.some((entry) => entry.fax_id === ids[0] && entry.status === 'sending' && !entry.final),
    `asked about mid-call: ${JSON.stringify(reconciled.map((entry) => [entry.fax_id === ids[0], entry.status]))}`,
  );
});

test('a 429 storm: sending pauses and resumes, no fax is lost and no attempt is used up', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '3', FAX_SUBMIT_ATTEMPTS: '1', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 20, failNextPosts: Array(8).fill(429), retryAfterSeconds: 0 },
  });
  const ids = await queueFaxes(pipeline, 6, (i) => ({ to: destination(i, 10) }));
  const statuses = await pipeline.waitForAll(ids, 30_000);
  t.deepEqual(
    new Set(statuses),
    new Set(['delivered']),
    'with one attempt each, a burnt attempt would have failed a fax',
  );
  const stats = pipeline.simulator.lifecycle.stats;
  t.is(stats.posts, 6 + 8);
  t.is(stats.accepted, 6, 'each fax accepted exactly once');
});

test("our limit above Telnyx's real one: channel-limit failures are sent again, the limit is lowered and an event says so", async (t) => {
  const pipeline = await startPipeline(t, {
    env: {
      FAX_ACCOUNT_CHANNEL_LIMIT: '10',
      FAX_CHANNEL_LIMIT: '4',
      FAX_SUBMIT_ATTEMPTS: '1',
      TELNYX_RATE_LIMIT: 'none',
    },
    // Calls long enough that our 4 are surely on the line together, however slow this machine is.
    simulator: { stepMs: 5, callMs: 1500, channelLimit: 2 },
  });
  const ids = await queueFaxes(pipeline, 8, (i) => ({ connection_id: 'c1', to: destination(i, 12) }));
  const statuses = await pipeline.waitForAll(ids, 30_000);
  t.deepEqual(new Set(statuses), new Set(['delivered']));
  const entries = await pipeline.entries();
  const lowered = entries.filter((entry) => entry.event_type === 'fax.channel_limit.lowered');
  t.true(lowered.length >= 1);
  t.like(lowered[0]?.payload, { scope: 'connection:c1', configured_limit: 4 });
  const refused = entries.filter(
    (entry) => entry.failure_reason === 'connection_channel_limit_exceeded' && entry.fax_id,
  );
  t.true(refused.length >= 1);
  t.true(
    refused.every((entry) => !entry.final && entry.status === 'queued'),
    'a channel-limit failure is never final',
  );
  const connection = (await readLimits(store(pipeline))).scopes.find(
    (scope) => scope.scope === 'connection:c1',
  );
  t.like(connection, { limit: 4 });
  t.true((connection?.effective ?? 99) <= 3, `lowered below the configured 4 (is ${connection?.effective})`);
});

test('fax limits: set at run time without a restart, shown with in-flight counts, bad input refused', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '0', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 20 },
  });
  const env = { ...process.env, ...pipeline.env, FAX_ACCOUNT_CHANNEL_LIMIT: '0' };
  const id = await queueFax(pipeline, SEED_FAX);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const shown = (await run('node', [FAX_CLI, 'limits', 'show'], { env })).stdout;
  t.regex(shown, /^account\s+0\s+0\s+0\s+1/m, 'account: limit 0, nothing in flight, one waiting');

  const set = await run('node', [FAX_CLI, 'limits', 'set', 'account', '2'], { env });
  t.regex(set.stdout, /account: limit 2 \(1 waiting fax\(es\) woken\)/);
  t.deepEqual(await pipeline.waitForAll([id], 5000), ['delivered']);

  await run('node', [FAX_CLI, 'limits', 'set', 'connection', 'c9', '3'], { env });
  await run('node', [FAX_CLI, 'limits', 'assign', 'c9', 'east'], { env });
  const json = JSON.parse((await run('node', [FAX_CLI, 'limits', 'show', '--json'], { env })).stdout);
  t.like(
    json.scopes.find((scope: { scope: string }) => scope.scope === 'connection:c9'),
    { limit: 3, effective: 3, inFlight: 0, waiting: 0 },
  );
  t.deepEqual(json.profiles, { c9: 'east' });

  const bad = await run('node', [FAX_CLI, 'limits', 'set', 'connection', 'c9', 'lots'], { env }).catch(
    (e) => e,
  );
  // Bad input: exit 2 with one line saying what is wrong, no stack trace.
  t.is(bad.code, 2);
  t.is(bad.stderr, 'fax limits: a limit is a whole number (0 or more) or "none"\n');
  const unknown = await run('node', [FAX_CLI, 'limits', 'set', 'galaxy', '3'], { env }).catch((e) => e);
  t.is(unknown.stderr, 'fax limits: scope must be one of account, destination, connection, profile\n');
  const missing = await run('node', [FAX_CLI, 'limits', 'set', 'connection', '5'], { env }).catch((e) => e);
  t.is(missing.code, 2);
  t.is(missing.stderr, 'fax limits: expected: connection <id> <limit>\n');
});

test('on its last try, a POST that timed out is looked up before the fax may fail: the fax Telnyx created is found and delivered', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_SUBMIT_ATTEMPTS: '1', TELNYX_TIMEOUT_MS: '1000', TELNYX_RATE_LIMIT: 'none' },
    // Telnyx creates the fax, answers too late for us, and its webhooks come later still.
    simulator: { stepMs: 5, callMs: 20, postLatencyMs: 2500, webhookDelayMs: 6000 },
  });
  const [id] = await queueFaxes(pipeline, 1, (i) => ({ to: destination(i, 10) }));
  const entries = await pipeline.waitForFax(id as string, (all) => all.some((entry) => entry.final), 15_000);
  t.like(
    entries.find((entry) => entry.final),
    { event_type: 'fax.delivered', status: 'delivered' },
  );
  t.false(
    entries.some((entry) => entry.status === 'failed'),
    'never reported failed',
  );
  t.is(pipeline.simulator.lifecycle.stats.posts, 1);
});

test('on its last try, a 5xx that created nothing fails the fax only once Telnyx confirms it has none, and frees its slot', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', FAX_SUBMIT_ATTEMPTS: '1', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 20, failNextPosts: [500] },
  });
  const [first, second] = await queueFaxes(pipeline, 2, (i) => ({ to: destination(i, 10) }));
  t.deepEqual(await pipeline.waitForAll([first as string, second as string], 15_000), [
    'failed',
    'delivered',
  ]);
  t.like(await pipeline.redis.hgetall(pipeline.keys.fax(first as string)), {
    failure_reason: 'submission_failed',
    detail: 'no POST of 1 reached Telnyx; none created a fax',
  });
  t.true(pipeline.simulator.lifecycle.stats.lists >= 1, 'Telnyx was asked');
});

test('a waiting fax whose job was removed is queued again by the slot keeper and sent', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 600 },
    slots: { wakeRetryMs: 300 },
    keeper: { intervalMs: 200, batch: 50, sweepMs: 1000 },
  });
  const [first, second] = await queueFaxes(pipeline, 2, (i) => ({ to: destination(i, 10) }));
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  await until(
    async () => (await queue.getJobState(second as string)) === 'delayed',
    'the second fax parked',
    5000,
  );
  await (await queue.getJob(second as string))?.remove();
  t.deepEqual(await pipeline.waitForAll([first as string, second as string], 10_000), [
    'delivered',
    'delivered',
  ]);
});
