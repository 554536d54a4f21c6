import { randomUUID } from 'node:crypto';
import test from 'ava';
import { Queue } from 'bullmq';
import { encodeClientState } from '../shared/client-state.ts';
import { listen } from '../shared/http-server.ts';
import { createKeys, FAX_QUEUE } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { connectRedis } from '../shared/redis.ts';
import { freePort } from '../shared/redis-server.ts';
import { createHandoff } from '../shared/slots/handoff.ts';
import { defaultRetryPolicy } from '../shared/retry-policy.ts';
import { defaultSlotSettings } from '../shared/slots/settings.ts';
import { createWebhookSigner } from '../simulator/signer.ts';
import { createWebhookApp } from '../webhook/http-app.ts';
import { telnyxPublicKey } from '../webhook/verify-signature.ts';
import { isFinal, queueFax, startPipeline, type TestPipeline } from './helpers/pipeline.ts';

function webhookBody(eventType: string, payload: Record<string, unknown>, id = randomUUID()) {
  return JSON.stringify({
    data: { event_type: eventType, id, occurred_at: new Date().toISOString(), record_type: 'event', payload },
    meta: { attempt: 1, delivered_to: 'http://example.com' },
  });
}

function post(pipeline: TestPipeline, body: string, headers = signed(pipeline, body)) {
  return fetch(pipeline.webhookUrl, { method: 'POST', headers, body });
}

function signed(pipeline: TestPipeline, body: string, at?: number): Record<string, string> {
  // The simulator's signer is the test builder: real Ed25519 signatures over real payloads.
  return pipeline.simulator.signerHeaders(body, at);
}

test('a bad or missing signature gets 401 and changes nothing', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const body = webhookBody('fax.delivered', { fax_id: 'x' });
  t.is((await fetch(pipeline.webhookUrl, { method: 'POST', body })).status, 401);
  const headers = signed(pipeline, body);
  t.is((await post(pipeline, body.replace('delivered', 'failed'), headers)).status, 401);
  t.is((await post(pipeline, body, signed(pipeline, body, Math.floor(Date.now() / 1000) - 301))).status, 401);
  t.deepEqual(await pipeline.entries(), []);
});

test('a terminal webhook that arrives before the worker recorded the Telnyx id still finds its fax', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const faxId = await queueFax(pipeline);
  const payload = {
    fax_id: 'telnyx-1',
    direction: 'outbound',
    status: 'delivered',
    client_state: encodeClientState({ faxId, attempt: 1, callerState: undefined }),
  };
  const response = await post(pipeline, webhookBody('fax.delivered', payload));
  t.is(response.status, 200);
  const entries = await pipeline.waitForFax(faxId, isFinal);
  t.like(entries.at(-1), {
    event_type: 'fax.delivered',
    telnyx_fax_id: 'telnyx-1',
    final: true,
    client_state: '',
  });
});

test('duplicates are dropped, unknown and inbound events are published without changing any fax', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const faxId = await queueFax(pipeline);
  const clientState = encodeClientState({ faxId, attempt: 1, callerState: undefined });
  const delivered = webhookBody('fax.delivered', {
    fax_id: 't1',
    direction: 'outbound',
    client_state: clientState,
  });
  t.deepEqual(await (await post(pipeline, delivered)).json(), { result: 'applied' });
  t.deepEqual(await (await post(pipeline, delivered)).json(), { result: 'duplicate' });
  await post(pipeline, webhookBody('fax.something.new', { fax_id: 't1', client_state: clientState }));
  await post(
    pipeline,
    webhookBody('fax.received', { fax_id: 'in-1', direction: 'inbound', media_url: 'https://x/y.pdf' }),
  );
  const entries = await pipeline.entries();
  t.is(entries.filter((e) => e.event_type === 'fax.delivered').length, 1);
  t.like(
    entries.find((e) => e.event_type === 'fax.something.new'),
    { fax_id: faxId, status: 'delivered', final: false },
  );
  t.like(
    entries.find((e) => e.event_type === 'fax.received'),
    { fax_id: '', direction: 'inbound', telnyx_fax_id: 'in-1' },
  );
});

test('a signed webhook with a null payload, null meta or a numeric id is taken in (once), not refused for Telnyx to resend forever', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const bodies = [
    JSON.stringify({ data: { event_type: 'fax.queued', id: 12345, payload: null }, meta: null }),
    JSON.stringify({
      data: {
        event_type: 'fax.media.processed',
        id: randomUUID(),
        occurred_at: null,
        payload: { fax_id: 't9' },
      },
    }),
  ];
  for (const body of bodies) {
    t.deepEqual(await (await post(pipeline, body)).json(), { result: 'published' });
  }
  t.deepEqual(await (await post(pipeline, bodies[0] as string)).json(), { result: 'duplicate' });
  const entries = await pipeline.entries();
  t.deepEqual(
    entries.map((e) => e.event_type),
    ['fax.queued', 'fax.media.processed'],
  );
  t.like(entries[0], { event_id: '12345' });
});

test('with Redis unreachable the webhook answers 503, so Telnyx retries', async (t) => {
  const signer = createWebhookSigner();
  const deadPort = await freePort();
  const redis = connectRedis(`redis://127.0.0.1:${deadPort}`, { failFast: true });
  redis.on('error', () => undefined);
  t.teardown(() => redis.disconnect());
  const keys = createKeys('t', 't:events');
  const queue = new Queue(FAX_QUEUE, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', () => undefined);
  t.teardown(() => queue.close());
  const logger = createLogger('silent', 'test');
  const app = createWebhookApp({
    sink: {
      redis,
      keys,
      streamMaxLen: 10,
      slots: defaultSlotSettings('t'),
      retryPolicy: defaultRetryPolicy(),
    },
    handoff: createHandoff({ queue, redis, keys, logger, submitAttempts: 1 }),
    logger: createLogger('silent', 'test'),
    publicKey: telnyxPublicKey(signer.publicKey),
  });
  const server = await listen(app, 0, '127.0.0.1');
  t.teardown(() => server.close());
  const body = webhookBody('fax.delivered', { fax_id: 't1' });
  const response = await fetch(`${server.url}/webhooks/telnyx`, {
    method: 'POST',
    headers: signer.headers(body),
    body,
  });
  t.is(response.status, 503);
});

test('reordered and duplicated webhooks from the simulator still end in one final delivered event', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { reorderWebhooks: true, duplicateWebhooks: true } });
  const faxId = await queueFax(pipeline);
  await pipeline.waitForFax(faxId, (entries) => entries.some((e) => e.event_type === 'fax.sending.started'));
  const entries = await pipeline.waitForFax(faxId, isFinal);
  t.is(entries.filter((e) => e.final).length, 1);
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${faxId}`)).json()) as {
    data: { status: string };
  };
  t.is(view.data.status, 'delivered');
  t.is(await pipeline.redis.zcard(pipeline.keys.inFlight), 0);
});
