import test from 'ava';
import { Queue } from 'bullmq';
import { FAX_QUEUE } from '../shared/keys.ts';
import { isFinal, queueFax, SEED_FAX, startPipeline, finalEntry } from './helpers/pipeline.ts';

test('a fax with send_at is held until then, then sent; a bad send_at is refused by name', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { stepMs: 5, callMs: 10, recordTimes: true } });
  const sendAt = new Date(Date.now() + 1500);
  const id = await queueFax(pipeline, { ...SEED_FAX, send_at: sendAt.toISOString() });
  const entries = await pipeline.waitForFax(id, isFinal, 10_000);
  t.like(
    entries.find((entry) => entry.final),
    { event_type: 'fax.delivered' },
  );
  const [posted] = pipeline.simulator.lifecycle.stats.postTimes;
  t.true((posted ?? 0) >= sendAt.getTime(), `POSTed ${(posted ?? 0) - sendAt.getTime()} ms after send_at`);
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${id}`)).json()) as { data: unknown };
  t.like(view.data, { send_at: sendAt.toISOString() });
  t.false(
    pipeline.simulator.lifecycle.requests.some((body) => 'send_at' in (body as object)),
    'not sent to Telnyx',
  );

  const bad = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, send_at: 'tomorrow morning' }),
  });
  t.is(bad.status, 422);
  t.regex(JSON.stringify(await bad.json()), /"pointer":"\/send_at"/);
});

test('a scheduled fax whose job runs early sends nothing; it can be cancelled before it is due', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { stepMs: 5, callMs: 10 } });
  const id = await queueFax(pipeline, { ...SEED_FAX, send_at: new Date(Date.now() + 60_000).toISOString() });
  // Its job, promoted by hand, runs now: the claim refuses it and it waits again, holding nothing.
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  await queue.backend.promote(id);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(await queue.getJobState(id), 'delayed');
  t.is(pipeline.simulator.lifecycle.stats.posts, 0, 'not sent early');
  t.is(await pipeline.redis.zcard(pipeline.keys.slots.leases), 0, 'no slot taken');
  const response = await fetch(`${pipeline.producerUrl}/v2/faxes/${id}/actions/cancel`, { method: 'POST' });
  t.is(response.status, 202);
  t.like(finalEntry(await pipeline.waitForFax(id, isFinal)), { event_type: 'fax.cancelled' });
  t.is(pipeline.simulator.lifecycle.stats.posts, 0);
  t.is(await queue.getJob(id), undefined, 'its job is out of the queue too');
});
