import test, { type ExecutionContext } from 'ava';
import { DASHBOARD_PATH } from '../producer/dashboard.ts';
import { freePort, startRedisServer } from '../shared/redis-server.ts';
import { startWorkerService } from '../worker/main.ts';
import { scrape, type Sample, sampleValue } from './helpers/metrics.ts';
import { queueFaxes, SEED_FAX, startPipeline, type TestPipeline } from './helpers/pipeline.ts';

const to = (i: number) => `+1312945${7300 + i}`;
const TOKEN = 'observability-token-0123456789';

async function until<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined && done(value)) return value;
    if (Date.now() > deadline) throw new Error(`not in time: ${what} (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const baseOf = (pipeline: TestPipeline) => pipeline.webhookUrl.replace(/\/webhooks\/telnyx$/, '');

/** Counter growth between two scrapes (a series first seen in the second counts from 0). */
const grew = (before: readonly Sample[], after: readonly Sample[], name: string, labels = {}) =>
  (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);

async function postWebhook(pipeline: TestPipeline, body: string, headers: Record<string, string>) {
  const response = await fetch(pipeline.webhookUrl, { method: 'POST', headers, body });
  await response.arrayBuffer();
  return response.status;
}

test('metrics move as faxes go through: queue depth, slots, dispatches, outcomes, retries, latencies, stream, webhooks', async (t) => {
  const pipeline = await startPipeline(t, {
    worker: false,
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '2', FAX_RETRY_DELAY_SCALE: '0.001', TELNYX_RATE_LIMIT: 'none' },
    simulator: {
      stepMs: 10,
      callMs: 400,
      failures: { [to(5)]: 'destination_invalid' },
      failFirst: { [to(4)]: { reason: 'user_busy', times: 1 } },
    },
  });
  const { redis, keys } = pipeline;
  await redis.xgroup('CREATE', keys.stream, 'billing', '0', 'MKSTREAM');
  const before = await scrape(pipeline.producerUrl);

  const ids = await queueFaxes(pipeline, 6, (i) => ({ to: to(i) }));
  const backlog = await scrape(pipeline.producerUrl);
  t.is(
    sampleValue(backlog, 'fax_queue_jobs', { queue: 'faxes', state: 'waiting' }),
    6,
    'the backlog is in the queue gauge',
  );
  t.is(grew(before, backlog, 'fax_queued_total'), 6);
  t.is(sampleValue(backlog, 'fax_redis_up'), 1);

  const worker = await startWorkerService(pipeline.runtime);
  t.teardown(() => worker.close());
  const busy = await until(
    () => scrape(pipeline.producerUrl),
    // Both channels claimed, and Telnyx's 202 recorded for at least one (a claim comes before its POST).
    (samples) =>
      sampleValue(samples, 'fax_channels_in_flight', { scope: 'account' }) === 2 &&
      (sampleValue(samples, 'fax_in_flight') ?? 0) >= 1,
    'both account channels in use',
  );
  t.is(sampleValue(busy, 'fax_channel_limit', { scope: 'account' }), 2);
  t.true((sampleValue(busy, 'fax_in_flight') ?? 0) >= 1, 'faxes at Telnyx');
  t.true((sampleValue(busy, 'fax_channels_waiting', { scope: 'account' }) ?? 0) >= 1, 'faxes in line');

  const statuses = await pipeline.waitForAll(ids);
  t.deepEqual(statuses.filter((status) => status === 'delivered').length, 5);

  // Webhooks by outcome: one signed event twice (ok, then duplicate), and one with a bad signature.
  const event = JSON.stringify({
    data: { event_type: 'fax.received', id: 'metrics-inbound-1', payload: { direction: 'inbound' } },
  });
  t.is(await postWebhook(pipeline, event, pipeline.simulator.signerHeaders(event)), 200);
  t.is(await postWebhook(pipeline, event, pipeline.simulator.signerHeaders(event)), 200);
  const forged = { ...pipeline.simulator.signerHeaders(event), 'telnyx-signature-ed25519': 'AAAA' };
  t.is(await postWebhook(pipeline, event, forged), 401);

  const after = await scrape(pipeline.producerUrl);
  t.is(grew(before, after, 'fax_dispatches_total', { result: 'submitted' }), 7, 'six faxes, one sent twice');
  t.true(grew(before, after, 'fax_dispatches_total', { result: 'parked' }) >= 1, 'some waited for a channel');
  t.is(grew(before, after, 'fax_telnyx_posts_total', { outcome: 'accepted' }), 7);
  t.is(grew(before, after, 'fax_delivered_total'), 5);
  t.is(grew(before, after, 'fax_failed_total', { failure_reason: 'destination_invalid' }), 1);
  t.is(grew(before, after, 'fax_retries_total', { failure_reason: 'user_busy' }), 1);
  // Each latency once per fax (or per attempt for queued → submitted), never twice.
  t.is(sampleValue(after, 'fax_queued_to_submitted_seconds_count'), 7);
  t.is(sampleValue(after, 'fax_submitted_to_final_seconds_count', { status: 'delivered' }), 5);
  t.is(sampleValue(after, 'fax_submitted_to_final_seconds_count', { status: 'failed' }), 1);
  t.is(sampleValue(after, 'fax_queued_to_final_seconds_count', { status: 'delivered' }), 5);
  t.is(sampleValue(after, 'fax_queued_to_final_seconds_count', { status: 'failed' }), 1);
  t.true(
    (sampleValue(after, 'fax_submitted_to_final_seconds_sum', { status: 'delivered' }) ?? 0) >= 5 * 0.4,
    'the calls took at least their 400 ms each',
  );
  t.is(sampleValue(after, 'fax_queue_jobs', { queue: 'faxes', state: 'waiting' }), 0);
  t.is(sampleValue(after, 'fax_channels_in_flight', { scope: 'account' }), 0);

  const stats = pipeline.simulator.lifecycle.stats;
  t.is(grew(before, after, 'fax_webhooks_total', { outcome: 'bad_signature' }), 1);
  t.true(grew(before, after, 'fax_webhooks_total', { outcome: 'duplicate' }) >= 1);
  t.is(
    grew(before, after, 'fax_webhooks_total', { outcome: 'ok' }) +
      grew(before, after, 'fax_webhooks_total', { outcome: 'duplicate' }),
    stats.webhooksSent + 2,
    'every webhook answered 2xx is counted once',
  );

  const length = await redis.xlen(keys.stream);
  t.is(sampleValue(after, 'fax_stream_length'), length);
  t.is(
    sampleValue(after, 'fax_stream_group_lag', { group: 'billing' }),
    length,
    'the group has read nothing',
  );
  t.is(sampleValue(after, 'fax_stream_group_pending', { group: 'billing' }), 0);

  // Every service reports the same shared state; the worker's own port has it too.
  const fromWebhook = await scrape(baseOf(pipeline));
  t.is(sampleValue(fromWebhook, 'fax_stream_length'), length);
});

test('readiness answers 503 while Redis is down and 200 once it is back; liveness stays 200', async (t) => {
  const port = await freePort();
  let redis = await startRedisServer({ port });
  t.teardown(() => redis.stop());
  const pipeline = await startPipeline(t, { redisUrl: redis.url, worker: false });
  const worker = await startWorkerService({
    ...pipeline.runtime,
    config: {
      ...pipeline.runtime.config,
      env: { ...pipeline.runtime.config.env, FAX_WORKER_HEALTH_PORT: 0 },
    },
  });
  t.teardown(() => worker.close());
  const services = {
    producer: pipeline.producerUrl,
    webhook: baseOf(pipeline),
    worker: worker.healthUrl as string,
  };
  const status = async (url: string) => (await fetch(url)).status;
  const all = async (path: string) => {
    const entries = await Promise.all(
      Object.entries(services).map(async ([name, url]) => [name, await status(`${url}${path}`)]),
    );
    return Object.fromEntries(entries) as Record<string, number>;
  };
  const every = (code: number) => (statuses: Record<string, number>) =>
    Object.values(statuses).every((value) => value === code);

  t.deepEqual(await all('/readyz'), { producer: 200, webhook: 200, worker: 200 });
  await redis.stop();
  await until(() => all('/readyz'), every(503), 'every service not ready');
  t.deepEqual(await all('/healthz'), { producer: 200, webhook: 200, worker: 200 }, 'alive all the same');
  const reason = await (await fetch(`${services.worker}/readyz`)).json();
  t.deepEqual(reason, { status: 'unavailable', reason: 'Redis is unreachable' });
  const down = await (await fetch(`${services.producer}/metrics`)).text();
  t.regex(down, /^fax_redis_up 0$/m, 'metrics still answer, saying Redis is down');

  redis = await startRedisServer({ port });
  await until(() => all('/readyz'), every(200), 'every service ready again');
  t.pass();
});

test('scrapes while Redis hangs share one read of the shared state instead of piling one each onto the connection', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const pipeline = await startPipeline(t, { redisUrl: redis.url, worker: false });
  // Each read of the shared state takes the stream's length (and the dead letters'): two XLENs.
  const xlens = async () =>
    Number(/^cmdstat_xlen:calls=(\d+)/m.exec(await pipeline.redis.info('commandstats'))?.[1] ?? 0);
  const before = await xlens();
  await pipeline.redis.call('CLIENT', 'PAUSE', '6500', 'ALL');
  // Three scrapes one after the other, each giving up on Redis after its timeout (2 s).
  for (let i = 0; i < 3; i++) {
    const text = await (await fetch(`${pipeline.producerUrl}/metrics`)).text();
    t.regex(text, /^fax_redis_up /m, 'a scrape still answers while Redis hangs');
  }
  await until(
    () => xlens(),
    (count) => count > before,
    'the read that hung is done once Redis answers again',
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is((await xlens()) - before, 2, 'one read for the three scrapes');
});

async function dashboardPipeline(t: ExecutionContext) {
  return startPipeline(t, { worker: false, env: { FAX_API_TOKEN: TOKEN } });
}

test('the queue dashboard needs the API token (bearer, or basic with it as the password) and is read-only', async (t) => {
  const pipeline = await dashboardPipeline(t);
  const url = `${pipeline.producerUrl}${DASHBOARD_PATH}`;
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  const anonymous = await fetch(url);
  t.is(anonymous.status, 401);
  t.regex(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/, 'a browser asks for it');
  t.is((await fetch(url, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
  t.is((await fetch(url, { headers: { authorization: basic('admin', 'wrong') } })).status, 401);
  t.is((await fetch(`${url}/api/queues`)).status, 401, 'its API too');

  const page = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(page.status, 200);
  const html = await page.text();
  // The page's own scripts and styles are served (bull-board's Koa adapter under Koa 3).
  const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((match) => match[1] as string);
  t.true(assets.some((asset) => asset.endsWith('.js')));
  for (const asset of assets) {
    const served = await fetch(`${url}/${asset}`, { headers: { authorization: basic('ops', TOKEN) } });
    t.is(served.status, 200, asset);
    await served.arrayBuffer();
  }
  const api = await fetch(`${url}/api/queues`, { headers: { authorization: basic('ops', TOKEN) } });
  t.is(api.status, 200);
  const { queues } = (await api.json()) as { queues: { name: string; readOnlyMode: boolean }[] };
  t.deepEqual(queues.map((queue) => [queue.name, queue.readOnlyMode]).sort(), [
    ['fax-inbound', true],
    ['faxes', true],
  ]);

  const authorized = { authorization: `Bearer ${TOKEN}` };
  const queued = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { ...authorized, 'content-type': 'application/json' },
    body: JSON.stringify(SEED_FAX),
  });
  const { id } = ((await queued.json()) as { data: { id: string } }).data;
  const empty = await fetch(`${url}/api/queues/faxes/empty`, { method: 'PUT', headers: authorized });
  t.is(empty.status, 405, 'no change goes around the pipeline');
  t.is(await pipeline.redis.hget(pipeline.keys.fax(id), 'status'), 'queued');
  t.not(await pipeline.redis.exists(`${pipeline.keys.bullPrefix}:faxes:${id}`), 0, 'the job is still there');
});

test('probes need no token; /metrics needs the API token when one is set', async (t) => {
  const pipeline = await dashboardPipeline(t);
  t.is((await fetch(`${pipeline.producerUrl}/healthz`)).status, 200);
  t.is((await fetch(`${pipeline.producerUrl}/readyz`)).status, 200);
  t.is((await fetch(`${pipeline.producerUrl}/metrics`)).status, 401);
  t.is((await fetch(`${baseOf(pipeline)}/metrics`)).status, 401);
  const samples = await scrape(pipeline.producerUrl, { authorization: `Bearer ${TOKEN}` });
  t.is(sampleValue(samples, 'fax_redis_up'), 1);
  t.is((await fetch(`${pipeline.producerUrl}/v2/faxes/x`)).status, 401, 'the API still needs it');
});
