import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import {
  isFinal,
  queueFax,
  SEED_FAX,
  startPipeline,
  type TestPipeline,
  finalEntry,
} from './helpers/pipeline.ts';
import { FAX_CLI } from './helpers/processes.ts';
import { until } from './helpers/until.ts';

const run = promisify(execFile);
const to = (i: number) => `+1312945${7300 + i}`;

const cancel = (pipeline: TestPipeline, id: string) =>
  fetch(`${pipeline.producerUrl}/v2/faxes/${id}/actions/cancel`, { method: 'POST' });

test('a fax waiting in our queue is taken out: never sent, one final fax.cancelled, and the line moves on', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 800 },
  });
  const first = await queueFax(pipeline, { ...SEED_FAX, to: to(0) });
  const waiting = await queueFax(pipeline, { ...SEED_FAX, to: to(1) });
  const third = await queueFax(pipeline, { ...SEED_FAX, to: to(2) });
  const response = await cancel(pipeline, waiting);
  t.is(response.status, 202);
  t.deepEqual(await response.json(), { data: { result: 'ok' } });
  t.deepEqual(await pipeline.waitForAll([first, waiting, third], 10_000), [
    'delivered',
    'failed',
    'delivered',
  ]);
  const entries = await pipeline.waitForFax(waiting, isFinal);
  t.like(
    entries.find((entry) => entry.final),
    {
      event_type: 'fax.cancelled',
      status: 'failed',
      failure_reason: 'sender_canceled',
    },
  );
  t.is(entries.filter((entry) => entry.final).length, 1);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[waiting], undefined, 'never POSTed');
});

test('a fax on the line at Telnyx is cancelled there, and its final fax.failed says sender_canceled', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { stepMs: 5, callMs: 5000 } });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: to(3) });
  await pipeline.waitForFax(id, (entries) => entries.some((entry) => entry.status === 'sending'));
  t.is((await cancel(pipeline, id)).status, 202);
  const entries = await pipeline.waitForFax(id, isFinal, 4000);
  t.like(
    entries.find((entry) => entry.final),
    {
      event_type: 'fax.failed',
      status: 'failed',
      failure_reason: 'sender_canceled',
    },
  );
  t.is(
    pipeline.simulator.lifecycle.stats.postsByFax[id],
    1,
    'not sent again: sender_canceled is never retried',
  );
});

test('a finished fax cannot be cancelled (422), an unknown one is 404; fax cancel does the same from the shell', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { stepMs: 5, callMs: 10 } });
  const done = await queueFax(pipeline, { ...SEED_FAX, to: to(4) });
  await pipeline.waitForFax(done, isFinal);
  const finished = await cancel(pipeline, done);
  t.is(finished.status, 422);
  t.regex(JSON.stringify(await finished.json()), /has ended \(delivered\)/);
  t.is((await cancel(pipeline, 'no-such-fax')).status, 404);

  const env = { ...process.env, ...pipeline.env };
  const cli = await run('node', [FAX_CLI, 'cancel', done], { env }).catch((error) => error);
  t.is(cli.code, 1);
  t.regex(cli.stderr, /fax: The fax has ended \(delivered\)/);
});

test('fax cancel takes a queued fax out', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: to(5) });
  const env = { ...process.env, ...pipeline.env };
  const { stdout } = await run('node', [FAX_CLI, 'cancel', id], { env });
  t.deepEqual(JSON.parse(stdout), { id, cancelled: 'queue' });
  t.like(await pipeline.redis.hgetall(pipeline.keys.fax(id)), {
    status: 'failed',
    failure_reason: 'sender_canceled',
  });
});

test('a fax waiting for its retry is taken out and never sent again', async (t) => {
  const pipeline = await startPipeline(t, {
    // user_busy is retried after minutes: scaled to ~3 s here, time enough to cancel meanwhile.
    env: { FAX_RETRY_DELAY_SCALE: '0.01' },
    simulator: { stepMs: 5, callMs: 10, failFirst: { [to(6)]: { reason: 'user_busy', times: 1 } } },
  });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: to(6) });
  const failed = await pipeline.waitForFax(id, (entries) => entries.some((entry) => entry.next_attempt_at));
  t.like(failed.at(-1), { status: 'queued', final: false, failure_reason: 'user_busy' });
  t.is((await cancel(pipeline, id)).status, 202);
  const entries = await pipeline.waitForFax(id, isFinal);
  t.like(finalEntry(entries), {
    event_type: 'fax.cancelled',
    final: true,
    failure_reason: 'sender_canceled',
  });
  // Past the retry's time: the cancelled fax stayed cancelled.
  const due = Date.parse(failed.at(-1)?.next_attempt_at ?? '');
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now()) + 1000));
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 1, 'sent once, not again');
  t.is((await pipeline.entries()).filter((entry) => entry.fax_id === id && entry.final).length, 1);
});

test('while its POST to Telnyx is under way a fax cannot be cancelled (409, try again); once there, it is cancelled at Telnyx', async (t) => {
  // Telnyx takes 1.5 s to create the fax: the POST is in flight that long.
  const pipeline = await startPipeline(t, { simulator: { stepMs: 5, callMs: 5000, createDelayMs: 1500 } });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: to(7) });
  await until(() => pipeline.simulator.lifecycle.stats.posts === 1, 'the POST under way');
  const busy = await cancel(pipeline, id);
  t.is(busy.status, 409);
  t.regex(JSON.stringify(await busy.json()), /being sent to Telnyx; try again/);
  await pipeline.waitForFax(id, (entries) => entries.some((entry) => entry.event_type === 'fax.submitted'));
  t.is((await cancel(pipeline, id)).status, 202);
  const entries = await pipeline.waitForFax(id, isFinal, 8000);
  t.like(finalEntry(entries), { event_type: 'fax.failed', failure_reason: 'sender_canceled', final: true });
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 1);
});
