import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { Queue } from 'bullmq';
import { FAX_QUEUE } from '../shared/keys.ts';
import Telnyx from 'telnyx';
import { isFinal, queueFax, SEED_FAX, startPipeline, finalEntry } from './helpers/pipeline.ts';

const run = promisify(execFile);
const TOKEN = 'a-producer-token-of-some-length';

test("the seed's curl request, unchanged, is queued, sent once and delivered", async (t) => {
  const pipeline = await startPipeline(t, { env: { FAX_API_TOKEN: TOKEN } });
  const { stdout } = await run('curl', [
    '-sS',
    '-X',
    'POST',
    `${pipeline.producerUrl}/v2/faxes`,
    '--data-urlencode',
    `media_url=${SEED_FAX.media_url}`,
    '--data-urlencode',
    `connection_id=${SEED_FAX.connection_id}`,
    '--data-urlencode',
    `to=${SEED_FAX.to}`,
    '--data-urlencode',
    `from=${SEED_FAX.from}`,
    '--header',
    `Authorization: Bearer ${TOKEN}`,
    '-w',
    '\n%{http_code}',
  ]);
  const [body, status] = stdout.split('\n');
  t.is(status, '202');
  const { data } = JSON.parse(body as string);
  t.like(data, { record_type: 'fax', status: 'queued', to: SEED_FAX.to, from: SEED_FAX.from });
  const entries = await pipeline.waitForFax(data.id, isFinal);
  t.deepEqual([...new Set(entries.map((e) => e.event_type))].sort(), [
    'fax.delivered',
    'fax.enqueued',
    'fax.media.processed',
    'fax.queued',
    'fax.sending.started',
    'fax.submitted',
  ]);
  t.is(entries[0]?.event_type, 'fax.enqueued');
  t.is(finalEntry(entries)?.event_type, 'fax.delivered');
  const delivered = entries.find((e) => e.event_type === 'fax.delivered');
  t.like(delivered, { status: 'delivered', final: true, attempt: 1, direction: 'outbound' });
  t.truthy(delivered?.telnyx_fax_id);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[data.id], 1);
});

test('the official telnyx SDK pointed at the producer creates and retrieves a fax', async (t) => {
  const pipeline = await startPipeline(t, { env: { FAX_API_TOKEN: TOKEN } });
  const client = new Telnyx({ apiKey: TOKEN, baseURL: `${pipeline.producerUrl}/v2`, maxRetries: 0 });
  const created = await client.faxes.create({ ...SEED_FAX, quality: 'high', client_state: 'aGVsbG8=' });
  t.is(created.data?.status, 'queued');
  const id = created.data?.id as string;
  await pipeline.waitForFax(id, isFinal);
  const retrieved = await client.faxes.retrieve(id);
  const fax = retrieved.data as Record<string, unknown>;
  t.is(fax.id, id);
  t.is(fax.status, 'delivered');
  t.is(fax.client_state, 'aGVsbG8=');
  t.truthy(fax.telnyx_fax_id);
  t.is(fax.attempts, 1);
  t.true(Array.isArray(fax.events) && (fax.events as unknown[]).length >= 5);
});

test("a caller's client_state comes back in every Telnyx event, never our wrapper", async (t) => {
  const pipeline = await startPipeline(t);
  const data = { id: await queueFax(pipeline, { ...SEED_FAX, client_state: 'aGF2ZSBhIG5pY2UgZGF5ID1d' }) };
  const entries = await pipeline.waitForFax(data.id, isFinal);
  const telnyxEvents = entries.filter((e) =>
    ['fax.queued', 'fax.media.processed', 'fax.sending.started', 'fax.delivered'].includes(e.event_type),
  );
  t.true(telnyxEvents.length >= 3);
  for (const entry of telnyxEvents) {
    t.is(entry.client_state, 'aGF2ZSBhIG5pY2UgZGF5ID1d');
    t.is((entry.payload as { client_state?: string }).client_state, 'aGF2ZSBhIG5pY2UgZGF5ID1d');
  }
});

test('a fax Telnyx fails for a reason never retried ends with fax.failed, its failure_reason and final: true', async (t) => {
  const pipeline = await startPipeline(t, {
    simulator: { failures: { '+13129457421': 'receiver_unallocated_number' } },
  });
  const data = { id: await queueFax(pipeline, { ...SEED_FAX, to: '+13129457421' }) };
  const entries = await pipeline.waitForFax(data.id, isFinal);
  const failed = entries.find((e) => e.final);
  t.like(failed, {
    event_type: 'fax.failed',
    status: 'failed',
    failure_reason: 'receiver_unallocated_number',
    detail: 'receiver_unallocated_number is not retried',
  });
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${data.id}`)).json()) as {
    data: Record<string, unknown>;
  };
  t.like(view.data, { status: 'failed', failure_reason: 'receiver_unallocated_number', attempts: 1 });
});

test('a request Telnyx rejects (422) fails the fax at once with its detail, without retrying', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { failNextPosts: [422] } });
  const data = { id: await queueFax(pipeline, SEED_FAX) };
  const entries = await pipeline.waitForFax(data.id, isFinal);
  t.like(finalEntry(entries), { event_type: 'fax.failed', failure_reason: 'rejected', final: true });
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[data.id], 1);
});

test('a 5xx from Telnyx is retried and the fax is then delivered once', async (t) => {
  const pipeline = await startPipeline(t, { simulator: { failNextPosts: [500] } });
  const data = { id: await queueFax(pipeline, SEED_FAX) };
  const entries = await pipeline.waitForFax(data.id, isFinal);
  t.is(entries.find((e) => e.final)?.status, 'delivered');
  t.is(pipeline.simulator.lifecycle.stats.accepted, 1);
});

test('invalid input gets 422 naming every bad field, and nothing is queued or published', async (t) => {
  const pipeline = await startPipeline(t);
  const response = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, to: '12345', quality: 'best' }),
  });
  t.is(response.status, 422);
  const body = (await response.json()) as {
    errors: { code: string; title: string; detail: string; source: { pointer: string } }[];
  };
  t.deepEqual(body.errors.map((e) => e.source.pointer).sort(), ['/quality', '/to']);
  for (const error of body.errors)
    t.true(error.code.length > 0 && error.title.length > 0 && error.detail.length > 0);
  t.deepEqual(await pipeline.entries(), []);
  t.deepEqual(await pipeline.redis.keys(pipeline.keys.fax('*')), [], 'no fax record was written');
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  const counts = Object.values(await queue.getJobCounts());
  t.true(counts.length > 0);
  t.deepEqual(
    counts.filter((count) => count > 0),
    [],
    'no job was queued',
  );
});

test('connection_id and from fall back to the configured defaults', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { TELNYX_CONNECTION_ID: 'conn-default', FAX_FROM: '+19459457421' },
  });
  const response = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: SEED_FAX.to, media_url: SEED_FAX.media_url }),
  });
  t.is(response.status, 202);
  const { data } = (await response.json()) as { data: { id: string; connection_id: string; from: string } };
  t.is(data.connection_id, 'conn-default');
  t.is(data.from, '+19459457421');
  await pipeline.waitForFax(data.id, isFinal);
  t.like(pipeline.simulator.lifecycle.requests[0], { connection_id: 'conn-default', from: '+19459457421' });
});

test('with FAX_API_TOKEN set, a missing or wrong token gets 401 and an unknown id 404, in Telnyx error shape', async (t) => {
  const pipeline = await startPipeline(t, { env: { FAX_API_TOKEN: TOKEN } });
  const missing = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    body: JSON.stringify(SEED_FAX),
  });
  t.is(missing.status, 401);
  const wrong = await fetch(`${pipeline.producerUrl}/v2/faxes/x`, {
    headers: { authorization: 'Bearer wrong-token-wrong-token' },
  });
  t.is(wrong.status, 401);
  t.is(((await wrong.json()) as { errors: { code: string }[] }).errors[0]?.code, '10009');
  const unknown = await fetch(`${pipeline.producerUrl}/v2/faxes/00000000-0000-4000-8000-000000000000`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.is(unknown.status, 404);
  t.is(((await unknown.json()) as { errors: { code: string }[] }).errors[0]?.code, '10005');
  t.deepEqual(await pipeline.entries(), []);
});

test('malformed JSON gets 400, an unsupported content type 415, a huge body 413', async (t) => {
  const pipeline = await startPipeline(t);
  const post = (body: string, type: string) =>
    fetch(`${pipeline.producerUrl}/v2/faxes`, { method: 'POST', headers: { 'content-type': type }, body });
  t.is((await post('{"to":', 'application/json')).status, 400);
  t.is((await post('[1,2]', 'application/json')).status, 422);
  t.is((await post('to=x', 'text/plain')).status, 415);
  t.is(
    (
      await post(
        JSON.stringify({ ...SEED_FAX, media_url: `https://e.com/${'a'.repeat(2_000_000)}` }),
        'application/json',
      )
    ).status,
    413,
  );
  t.deepEqual(await pipeline.entries(), []);
});
