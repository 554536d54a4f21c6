import test from 'ava';
import { Queue } from 'bullmq';
import { createProducer } from '../producer/producer.ts';
import { FAX_QUEUE } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { SEED_FAX, startPipeline } from './helpers/pipeline.ts';

const recipients = (n: number) => Array.from({ length: n }, (_, i) => `+1312945${String(7400 + i)}`);

test('a batch of 50: one fax per recipient under one batch id, counted by status, the id on every stream entry', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '10', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 20 },
  });
  const response = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, to: recipients(50) }),
  });
  t.is(response.status, 202);
  const { data } = (await response.json()) as {
    data: { id: string; record_type: string; faxes: { id: string; to: string }[] };
  };
  t.is(data.record_type, 'fax_batch');
  t.is(data.faxes.length, 50);
  t.deepEqual(
    data.faxes.map((fax) => fax.to),
    recipients(50),
  );
  const ids = data.faxes.map((fax) => fax.id);
  t.deepEqual(new Set(await pipeline.waitForAll(ids, 30_000)), new Set(['delivered']));

  const batch = (await (await fetch(`${pipeline.producerUrl}/v2/batches/${data.id}`)).json()) as {
    data: unknown;
  };
  t.like(batch.data, { id: data.id, total: 50, counts: { delivered: 50 } });
  const entries = (await pipeline.entries()).filter((entry) => ids.includes(entry.fax_id));
  t.true(entries.length >= 250);
  t.true(
    entries.every((entry) => entry.batch_id === data.id),
    'every entry carries the batch id',
  );
  t.is((await fetch(`${pipeline.producerUrl}/v2/batches/nope`)).status, 404);
});

test('a batch with a bad recipient is refused naming it, and nothing is queued', async (t) => {
  const pipeline = await startPipeline(t, { worker: false, env: { FAX_MEDIA_URL_HOSTS: 'www.w3.org' } });
  const to = recipients(5);
  to[3] = '12345';
  const response = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, to }),
  });
  t.is(response.status, 422);
  const { errors } = (await response.json()) as { errors: { source: { pointer: string } }[] };
  t.deepEqual(
    errors.map((error) => error.source.pointer),
    ['/to/3'],
  );
  t.deepEqual(await pipeline.redis.keys(`${pipeline.keys.prefix}:fax:*`), []);
  const empty = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, to: [] }),
  });
  t.is(empty.status, 422);
  // The media_url allow-list holds for batches as for single faxes.
  const elsewhere = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, to: recipients(2), media_url: 'http://internal.example/a.pdf' }),
  });
  t.is(elsewhere.status, 422);
  t.regex(JSON.stringify(await elsewhere.json()), /"pointer":"\/media_url"/);
  t.deepEqual(await pipeline.redis.keys(`${pipeline.keys.prefix}:fax:*`), []);
});

test('a batch with an Idempotency-Key: the same request again, even at the same moment, gives back the same batch; other recipients are refused', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const post = (to: string[], key = 'mailing-2026-11') =>
    fetch(`${pipeline.producerUrl}/v2/faxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ ...SEED_FAX, to }),
    });
  type Batch = { data: { id: string; faxes: { id: string; to: string; status: string }[] } };
  // Two copies of the request racing (a client that timed out and sent again): one batch, each fax once.
  const [first, second] = await Promise.all([post(recipients(30)), post(recipients(30))]);
  t.is(first.status, 202);
  t.is(second.status, 202);
  const a = (await first.json()) as Batch;
  const b = (await second.json()) as Batch;
  t.is(a.data.id, b.data.id);
  t.deepEqual(
    a.data.faxes.map((fax) => fax.id),
    b.data.faxes.map((fax) => fax.id),
  );
  t.is(new Set(a.data.faxes.map((fax) => fax.id)).size, 30);
  t.true([first, second].some((response) => response.headers.get('idempotent-replayed') === 'true'));
  t.is(
    (await pipeline.redis.keys(`${pipeline.keys.prefix}:fax:*`)).filter((key) => !key.endsWith(':history'))
      .length,
    30,
  );

  const again = await post(recipients(30));
  t.is(again.headers.get('idempotent-replayed'), 'true');
  t.is(((await again.json()) as Batch).data.id, a.data.id);
  const batch = (await (await fetch(`${pipeline.producerUrl}/v2/batches/${a.data.id}`)).json()) as {
    data: { total: number; counts: Record<string, number> };
  };
  t.like(batch.data, { total: 30, counts: { queued: 30 } });

  const other = await post(recipients(31));
  t.is(other.status, 422);
  t.regex(JSON.stringify(await other.json()), /used for a different request.*"parameter":"Idempotency-Key"/);
});

test('a batch larger than a chunk of jobs has every fax queued as it returns, nothing left to the slot keeper', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const producer = createProducer({
    redis: pipeline.redis,
    keys: pipeline.keys,
    logger: createLogger('silent', 'test'),
  });
  t.teardown(() => producer.close());
  const to = Array.from({ length: 250 }, (_, i) => `+1312945${String(7000 + i)}`);
  const { faxes } = await producer.queueBatch({ ...SEED_FAX, to });
  t.is(faxes.length, 250);
  // Every fax has its job (by its id), and no outbox entry is left for the keeper to queue.
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  const jobs = await queue.getJobs(['waiting']);
  t.deepEqual(jobs.map((job) => job.id).sort(), faxes.map((fax) => fax.id).sort());
  t.is(await pipeline.redis.zcard(pipeline.keys.slots.outbox), 0);
});
