import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { Queue } from 'bullmq';
import { FAX_QUEUE } from '../shared/keys.ts';
import { nextOpening, type SendingWindow, sendingWindowSchema } from '../shared/sending-window.ts';
import { isFinal, queueFax, SEED_FAX, startPipeline, finalEntry } from './helpers/pipeline.ts';
import { SEND_SEED_FAX } from './helpers/processes.ts';
import { until } from './helpers/until.ts';

const run = promisify(execFile);
const FAX = new URL('../cli/fax.mjs', import.meta.url).pathname;
const at = (iso: string) => Date.parse(iso);
const office = (zone: string): SendingWindow =>
  sendingWindowSchema.parse(`mon-fri 08:00-18:00 ${zone}`) as SendingWindow;

test('office hours in the recipient zone: open now, later today, after the weekend', (t) => {
  const chicago = office('America/Chicago');
  // Wednesday 09:00 in Chicago (CST, UTC-6): open.
  t.is(nextOpening(chicago, at('2026-12-02T15:00:00Z')), at('2026-12-02T15:00:00Z'));
  // Tuesday 20:00 in Chicago: Wednesday 08:00 there.
  t.is(nextOpening(chicago, at('2026-12-02T02:00:00Z')), at('2026-12-02T14:00:00Z'));
  // Friday 19:00 in Chicago (already Saturday in UTC): Monday 08:00.
  t.is(nextOpening(chicago, at('2026-12-05T01:00:00Z')), at('2026-12-07T14:00:00Z'));
  // The same instant is Saturday morning in Berlin: Monday 08:00 there.
  t.is(nextOpening(office('Europe/Berlin'), at('2026-12-05T01:00:00Z')), at('2026-12-07T07:00:00Z'));
  // Closing time is not open: 18:00 sharp waits for the next day.
  t.is(nextOpening(chicago, at('2026-12-03T00:00:00Z')), at('2026-12-03T14:00:00Z'));
});

test('a window past midnight belongs to the day it opens; DST gaps move forward', (t) => {
  const nights = sendingWindowSchema.parse('mon 22:00-06:00 UTC') as SendingWindow;
  // Tuesday 03:00: still Monday night's window.
  t.is(nextOpening(nights, at('2026-11-24T03:00:00Z')), at('2026-11-24T03:00:00Z'));
  // Tuesday 07:00: next Monday 22:00.
  t.is(nextOpening(nights, at('2026-11-24T07:00:00Z')), at('2026-11-30T22:00:00Z'));
  // New York skips 02:00–03:00 on 2026-03-08: a 02:30 opening happens at 03:30 EDT.
  const sunday = sendingWindowSchema.parse('sun 02:30-05:00 America/New_York') as SendingWindow;
  t.is(nextOpening(sunday, at('2026-03-08T05:00:00Z')), at('2026-03-08T07:30:00Z'));
  // A window wholly inside the gap still opens that night, for as long as it lasts.
  const gap = sendingWindowSchema.parse('sun 02:30-03:30 America/New_York') as SendingWindow;
  t.is(nextOpening(gap, at('2026-03-08T05:00:00Z')), at('2026-03-08T07:30:00Z'));
  t.is(nextOpening(gap, at('2026-03-08T07:40:00Z')), at('2026-03-08T07:40:00Z'), 'open at 03:40 EDT');
});

test('windows are read from a string or an object; bad ones are named', (t) => {
  t.deepEqual(sendingWindowSchema.parse('08:00-18:00'), {
    days: ['mon', 'tue', 'wed', 'thu', 'fri'],
    start: '08:00',
    end: '18:00',
  });
  t.deepEqual(sendingWindowSchema.parse({ days: 'fri-mon', start: '09:30', end: '12:00' }).days, [
    'mon',
    'fri',
    'sat',
    'sun',
  ]);
  t.deepEqual(
    sendingWindowSchema.parse({
      days: ['sat', 'sun'],
      start: '10:00',
      end: '14:00',
      time_zone: 'Asia/Tokyo',
    }),
    {
      days: ['sat', 'sun'],
      start: '10:00',
      end: '14:00',
      time_zone: 'Asia/Tokyo',
    },
  );
  const problem = (value: unknown) => {
    const parsed = sendingWindowSchema.safeParse(value);
    return parsed.success
      ? 'accepted'
      : parsed.error.issues
          .map((i) => `${[...i.path, ...('keys' in i ? i.keys : [])].join('.')}: ${i.message}`)
          .join('; ');
  };
  t.regex(problem('mon-fry 08:00-18:00'), /^days: must name days as mon, tue/);
  t.regex(problem('mon-fri 25:00-18:00'), /^start: must be a time as HH:MM/);
  t.regex(problem('mon-fri 08:00-18:00 Mars/Olympus'), /^time_zone: must be an IANA time zone/);
  t.regex(problem({ start: '08:00', end: '08:00:00' }), /^end: must differ from start/);
  t.regex(problem({ start: '08:00', end: '18:00', hours: 3 }), /hours.*is not a field of a sending window/);
  t.regex(problem('whenever'), /start: must be a time as HH:MM/);
});

test('the time zone comes from the number where it maps to one zone; otherwise it must be given', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const post = (fax: Record<string, unknown>) =>
    fetch(`${pipeline.producerUrl}/v2/faxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fax),
    });
  const chicago = await queueFax(pipeline, { ...SEED_FAX, sending_window: 'mon-fri 08:00-18:00' });
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${chicago}`)).json()) as {
    data: { sending_window: unknown };
  };
  t.deepEqual(view.data.sending_window, {
    days: ['mon', 'tue', 'wed', 'thu', 'fri'],
    start: '08:00',
    end: '18:00',
    time_zone: 'America/Chicago',
  });

  // +1 555 is in no single zone of the North American plan; a SIP address is in none.
  for (const to of ['+18005550100', 'sip:fax@example.com']) {
    const refused = await post({ ...SEED_FAX, to, sending_window: 'mon-fri 08:00-18:00' });
    t.is(refused.status, 422);
    const body = (await refused.json()) as { errors: { source: { pointer: string }; detail: string }[] };
    t.like(body.errors[0], { source: { pointer: '/sending_window/time_zone' } });
    t.regex(body.errors[0]?.detail ?? '', /sending_window\.time_zone is required/);
  }
  t.is(
    (await post({ ...SEED_FAX, to: '+18005550100', sending_window: 'mon-fri 08:00-18:00 America/Denver' }))
      .status,
    202,
  );

  // A window that cannot open before the fax's time-to-live ends is refused up front.
  const late = await post({
    ...SEED_FAX,
    send_at: '2031-01-03T12:00:00Z',
    sending_window: 'mon 08:00-09:00 UTC',
    ttl_seconds: 3600,
  });
  t.is(late.status, 422);
  t.regex(
    JSON.stringify(await late.json()),
    /opens at 2031-01-06T08:00:00.000Z, after the fax's time-to-live ends.*"pointer":"\/sending_window"/,
  );
  const badTtl = await post({ ...SEED_FAX, ttl_seconds: 0 });
  t.regex(JSON.stringify(await badTtl.json()), /ttl_seconds must be at least 1/);
});

/** A window open from a few seconds from now for an hour, every day, in UTC (seconds allowed). */
function windowOpeningIn(ms: number): { spec: string; opensAt: number } {
  const opensAt = Math.ceil((Date.now() + ms) / 1000) * 1000;
  const clock = (when: number) => new Date(when).toISOString().slice(11, 19);
  return { spec: `mon-sun ${clock(opensAt)}-${clock(opensAt + 3_600_000)} UTC`, opensAt };
}

test('a fax is held until its window opens, even when its job runs early; it holds no channel meanwhile', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { stepMs: 5, callMs: 10, recordTimes: true } });
  const { spec, opensAt } = windowOpeningIn(4000);
  const id = await queueFax(pipeline, { ...SEED_FAX, sending_window: spec });
  // Run its job now, as a retry or a promotion would: the worker holds it and frees its slots.
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  await queue.backend.promote(id);
  await until(
    async () => (await pipeline.redis.hget(pipeline.keys.fax(id), 'hold_until')) !== null,
    'the fax held',
  );
  t.is(Number(await pipeline.redis.hget(pipeline.keys.fax(id), 'hold_until')), opensAt);
  t.is(await queue.getJobState(id), 'delayed');
  t.is(await pipeline.redis.zcard(pipeline.keys.slots.leases), 0, 'no slot held while waiting');
  t.is(pipeline.simulator.lifecycle.stats.posts, 0, 'nothing sent before the window opens');

  const entries = await pipeline.waitForFax(id, isFinal, 20_000);
  t.like(finalEntry(entries), { event_type: 'fax.delivered' });
  const [posted] = pipeline.simulator.lifecycle.stats.postTimes;
  t.true((posted ?? 0) >= opensAt, `POSTed ${(posted ?? 0) - opensAt} ms after the window opened`);
  t.false(
    pipeline.simulator.lifecycle.requests.some((body) => 'sending_window' in (body as object)),
    'the window is ours: not sent to Telnyx',
  );
});

test('a fax claimed just before its window closes and then paused by a 429 is not sent after the window closed: it is held', async (t) => {
  // Telnyx answers the first POST 429 "wait 4 s"; the window closes 2 s from now.
  const pipeline = await startPipeline(t, {
    simulator: { stepMs: 5, callMs: 10, failNextPosts: [429], retryAfterSeconds: 4 },
  });
  const clock = (when: number) => new Date(when).toISOString().slice(11, 19);
  const closesAt = Math.ceil((Date.now() + 2000) / 1000) * 1000;
  const spec = `mon-sun ${clock(closesAt - 3_600_000)}-${clock(closesAt)} UTC`;
  const id = await queueFax(pipeline, { ...SEED_FAX, sending_window: spec });
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.posts === 1, 'the POST that got 429');
  await until(
    async () => (await pipeline.redis.hget(pipeline.keys.fax(id), 'hold_until')) !== null,
    'the fax held once the pause ended after its window closed',
    10_000,
  );
  t.is(stats.accepted, 0, 'Telnyx got no fax after the window closed');
  t.is(stats.posts, 1);
  t.is(await pipeline.redis.hget(pipeline.keys.fax(id), 'status'), 'queued');
  t.is(await pipeline.redis.zcard(pipeline.keys.slots.held('account')), 0, 'its channel is free');
  // Held until the window opens again (tomorrow): its attempt is not used up.
  t.true(Number(await pipeline.redis.hget(pipeline.keys.fax(id), 'hold_until')) > Date.now() + 3_600_000);
});

test('fax send --window and --ttl reach the request; a number of many zones needs one named', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const env = { ...process.env, ...pipeline.env };
  const sent = await run(
    'node',
    [FAX, ...SEND_SEED_FAX, '--window', 'sat,sun 10:00-14:00', '--ttl', '604800', '--priority', 'high'],
    { env },
  );
  const { id } = JSON.parse(sent.stdout) as { id: string };
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${id}`)).json()) as {
    data: Record<string, unknown>;
  };
  t.like(view.data, {
    sending_window: { days: ['sat', 'sun'], start: '10:00', end: '14:00', time_zone: 'America/Chicago' },
    ttl_seconds: 604800,
    priority: 'high',
  });
  const error = await t.throwsAsync(
    run(
      'node',
      [
        FAX,
        ...SEND_SEED_FAX.map((arg) => (arg === SEED_FAX.to ? '+18005550100' : arg)),
        '--window',
        '08:00-18:00',
      ],
      { env },
    ),
  );
  t.regex(
    (error as unknown as { stderr: string }).stderr,
    /sending_window\.time_zone is required: \+18005550100 may be in any of \d+ time zones/,
  );
});
