import { connect, createServer } from 'node:net';
import test from 'ava';
import { freePort } from '../shared/redis-server.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { startWorkerService } from '../worker/main.ts';
import { isFinal, queueFax, SEED_FAX, startPipeline, finalEntry } from './helpers/pipeline.ts';
import { until } from './helpers/until.ts';

test('a POST that times out after Telnyx created the fax is found at Telnyx, not sent again', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { TELNYX_TIMEOUT_MS: '1000' },
    // Telnyx creates the fax, then answers too late for our client; its webhooks come later still,
    // so only asking Telnyx can tell the retry that the fax exists.
    simulator: { stepMs: 5, callMs: 10, postLatencyMs: 2500, webhookDelayMs: 8000 },
  });
  const id = await queueFax(pipeline, SEED_FAX);
  const stats = pipeline.simulator.lifecycle.stats;
  while (stats.posts === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  pipeline.simulator.configure({ postLatencyMs: 0 });
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  t.like(
    entries.find((entry) => entry.event_type === 'fax.submitted'),
    {
      detail: 'found at Telnyx after an interrupted submission; not sent again',
    },
  );
  t.like(
    entries.find((entry) => entry.final),
    { event_type: 'fax.delivered' },
  );
  t.is(stats.accepted, 1, 'Telnyx has one fax');
  t.is(stats.postsByFax[id], 1, 'and was asked for one');
});

test('a POST that fails without creating the fax (500) is checked at Telnyx, then sent once', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { stepMs: 5, callMs: 10, failNextPosts: [500] } });
  const id = await queueFax(pipeline, SEED_FAX);
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  t.like(
    entries.find((entry) => entry.final),
    { event_type: 'fax.delivered' },
  );
  t.is(pipeline.simulator.lifecycle.stats.accepted, 1);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 2, 'the 500, then the one that was taken');
  t.is(pipeline.simulator.lifecycle.stats.lists, 1, 'Telnyx was asked in between');
});

test('a 504 from a gateway while Telnyx goes on creating the fax: Telnyx is asked only once it must be done, and the fax is found, not sent again', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { TELNYX_TIMEOUT_MS: '2000' },
    // The gateway answers 504 at once; Telnyx creates the fax 1.8 s later (after the 1 s backoff a
    // 500 gets, before the 4 s a request without an answer gets); its webhooks come later still.
    simulator: { stepMs: 5, callMs: 10, gatewayTimeouts: 1, createDelayMs: 1800, webhookDelayMs: 8000 },
  });
  const id = await queueFax(pipeline, SEED_FAX);
  const entries = await pipeline.waitForFax(id, isFinal, 20_000);
  t.like(finalEntry(entries), { event_type: 'fax.delivered' });
  const stats = pipeline.simulator.lifecycle.stats;
  t.is(stats.accepted, 1, 'one fax at Telnyx');
  t.is(stats.postsByFax[id], 1, 'not POSTed again');
  t.like(
    entries.find((entry) => entry.event_type === 'fax.submitted'),
    { detail: 'found at Telnyx after an interrupted submission; not sent again' },
  );
});

test('a POST Telnyx is still working on when we give up is not sent again: we ask only once it must be done', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { TELNYX_TIMEOUT_MS: '1000' },
    // Telnyx creates the fax 1.5 s into the request, after our client gave up at 1 s (and before
    // twice that), and its webhooks come late: a lookup right after the timeout would find nothing.
    simulator: { stepMs: 5, callMs: 10, createDelayMs: 1500, webhookDelayMs: 8000 },
  });
  const id = await queueFax(pipeline, SEED_FAX);
  const stats = pipeline.simulator.lifecycle.stats;
  while (stats.posts === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  pipeline.simulator.configure({ createDelayMs: 0 });
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  t.like(
    entries.find((entry) => entry.final),
    { event_type: 'fax.delivered' },
  );
  t.is(stats.accepted, 1, 'one fax at Telnyx');
  t.is(stats.posts, 1);
});

test('the Telnyx client writes a POST only while its claim is fresh: a connection ready too late sends nothing', async (t) => {
  // A server that counts the requests that reach it: the simulator's own stats.
  const pipeline = await startPipeline(t, { worker: false });
  const telnyx = createTelnyxClient({
    apiKey: 'test-key',
    baseUrl: `${pipeline.simulatorUrl}/v2`,
    timeoutMs: 2000,
  });
  t.teardown(() => telnyx.close());
  const request = { ...SEED_FAX };
  // A fresh connection, ready after the deadline (it is already past): nothing is written.
  t.deepEqual(await telnyx.submitFax(request, { writeBy: performance.now() - 1 }), { kind: 'not-sent' });
  t.like(await telnyx.submitFax(request, { writeBy: performance.now() + 1000 }), { kind: 'accepted' });
  // The kept-alive connection is ready at once: still nothing written once the deadline has passed.
  t.deepEqual(await telnyx.submitFax(request, { writeBy: performance.now() - 1 }), { kind: 'not-sent' });
  t.is(pipeline.simulator.lifecycle.stats.posts, 1, 'only the one written in time reached Telnyx');
});

test('a POST that certainly reached nobody (connection refused) is sent again without asking Telnyx first', async (t) => {
  const pipeline = await startPipeline(t, { worker: false, env: { FAX_RETRY_DELAY_SCALE: '0.2' } });
  // Telnyx at a port nothing listens on yet: the first POST's connection is refused.
  const port = await freePort();
  const runtime = {
    ...pipeline.runtime,
    telnyx: { ...pipeline.runtime.telnyx, baseUrl: `http://127.0.0.1:${port}/v2` },
  };
  const worker = await startWorkerService(runtime);
  t.teardown(() => worker.close());
  const id = await queueFax(pipeline);
  await until(
    async () => (await pipeline.redis.hget(pipeline.keys.fax(id), 'post_tries')) === '1',
    'the refused POST',
  );
  // Telnyx is back at that address.
  const simulator = new URL(pipeline.simulatorUrl);
  const relay = createServer((socket) => {
    const upstream = connect(Number(simulator.port), simulator.hostname);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
  t.teardown(() => relay.close());
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  t.like(finalEntry(entries), { event_type: 'fax.delivered' });
  const stats = pipeline.simulator.lifecycle.stats;
  t.is(stats.accepted, 1);
  t.is(stats.lists, 0, 'nothing to ask Telnyx about: the refused POST wrote nothing');
});
