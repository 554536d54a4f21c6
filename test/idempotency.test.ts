import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { createProducer } from '../producer/producer.ts';
import { IdempotencyKeyError } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import { isFinal, SEED_FAX, startPipeline, type TestPipeline } from './helpers/pipeline.ts';
import { FAX_CLI } from './helpers/processes.ts';
import { storeFax } from './helpers/records.ts';

const run = promisify(execFile);

function post(pipeline: TestPipeline, body: unknown, key?: string) {
  return fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: JSON.stringify(body),
  });
}

/** A pipeline without a worker, and a library producer on its Redis. */
async function withProducer(t: ExecutionContext) {
  const pipeline = await startPipeline(t, { worker: false });
  const producer = createProducer({
    redis: pipeline.redis,
    keys: pipeline.keys,
    logger: createLogger('silent', 't'),
  });
  t.teardown(() => producer.close());
  return { pipeline, producer };
}

const jobCount = async (pipeline: TestPipeline) =>
  (await pipeline.redis.keys(`${pipeline.keys.prefix}:fax:*`)).filter((key) => !key.endsWith(':history'))
    .length;

test('the same Idempotency-Key and request give back the same fax, sent once', async (t) => {
  const pipeline = await startPipeline(t);
  const first = await post(pipeline, SEED_FAX, 'order-1234');
  t.is(first.status, 202);
  t.is(first.headers.get('idempotent-replayed'), null);
  const { data } = (await first.json()) as { data: { id: string } };
  await pipeline.waitForFax(data.id, isFinal);

  // The same fields in another order are the same request.
  const reordered = Object.fromEntries(Object.entries(SEED_FAX).reverse());
  const again = await post(pipeline, reordered, 'order-1234');
  t.is(again.status, 202);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  t.like(((await again.json()) as { data: unknown }).data, { id: data.id, status: 'delivered' });
  t.is(await jobCount(pipeline), 1, 'one fax record');
  t.is(pipeline.simulator.lifecycle.stats.accepted, 1, 'one fax sent');
});

test('the same Idempotency-Key with another request, or a malformed key, is refused and queues nothing', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  t.is((await post(pipeline, SEED_FAX, 'key-a')).status, 202);
  const reused = await post(pipeline, { ...SEED_FAX, to: '+13129457421' }, 'key-a');
  t.is(reused.status, 422);
  t.like(((await reused.json()) as { errors: unknown[] }).errors[0], {
    code: '10015',
    source: { parameter: 'Idempotency-Key' },
    detail: 'This Idempotency-Key was used for a different request; use a new key for a new fax.',
  });
  for (const bad of ['x'.repeat(256), 'tab\there']) {
    const response = await post(pipeline, SEED_FAX, bad);
    t.is(response.status, 422, JSON.stringify(bad));
    t.like(((await response.json()) as { errors: unknown[] }).errors[0], {
      source: { parameter: 'Idempotency-Key' },
    });
  }
  t.is(await jobCount(pipeline), 1);
});

test('ten concurrent requests with one key queue one fax; each gets it or is told to try again', async (t) => {
  const pipeline = await startPipeline(t);
  const responses = await Promise.all(Array.from({ length: 10 }, () => post(pipeline, SEED_FAX, 'burst')));
  const statuses = responses.map((response) => response.status);
  t.true(
    statuses.every((status) => status === 202 || status === 409),
    statuses.join(),
  );
  const ids = new Set(
    await Promise.all(
      responses
        .filter((response) => response.status === 202)
        .map(async (response) => ((await response.json()) as { data: { id: string } }).data.id),
    ),
  );
  t.is(ids.size, 1);
  await pipeline.waitForFax([...ids][0] as string, isFinal);
  t.is(await jobCount(pipeline), 1);
  t.is(pipeline.simulator.lifecycle.stats.accepted, 1);
});

test('a key whose first request died before storing its fax is taken over after 30 s', async (t) => {
  const { pipeline, producer } = await withProducer(t);
  // The claim a request leaves when it dies between claiming the key and storing the fax.
  await producer.queue(SEED_FAX, { idempotencyKey: 'probe' });
  const fingerprint = await pipeline.redis.hget(pipeline.keys.idempotency('probe'), 'fingerprint');
  const key = pipeline.keys.idempotency('orphan');
  await pipeline.redis.hset(key, { fax_id: 'claimed-id-1', fingerprint, claimed_at: Date.now() - 1000 });

  const early = await producer.queue(SEED_FAX, { idempotencyKey: 'orphan' }).catch((error) => error);
  t.true(early instanceof IdempotencyKeyError && early.reason === 'in-progress', String(early));
  await pipeline.redis.hset(key, 'claimed_at', Date.now() - 31_000);
  const taken = await producer.queue(SEED_FAX, { idempotencyKey: 'orphan' });
  t.like(taken, { id: 'claimed-id-1', replayed: false });
  t.like(await producer.get('claimed-id-1'), { status: 'queued' });
  t.like(await producer.queue(SEED_FAX, { idempotencyKey: 'orphan' }), {
    id: 'claimed-id-1',
    replayed: true,
  });
});

test('the library and fax send --idempotency-key give back the same fax', async (t) => {
  const { pipeline, producer } = await withProducer(t);
  const id = await producer.send(SEED_FAX, { idempotencyKey: 'lib-1' });
  t.is(await producer.send(SEED_FAX, { idempotencyKey: 'lib-1' }), id);

  const env = { ...process.env, ...pipeline.env };
  const args = ['send', '--to', SEED_FAX.to, '--media-url', SEED_FAX.media_url, '--from', SEED_FAX.from];
  const cli = [...args, '--connection-id', SEED_FAX.connection_id, '--idempotency-key', 'cli-1'];
  const first = JSON.parse((await run('node', [FAX_CLI, ...cli], { env })).stdout);
  const second = JSON.parse((await run('node', [FAX_CLI, ...cli], { env })).stdout);
  t.like(first, { replayed: false, status: 'queued' });
  t.like(second, { id: first.id, replayed: true });
  const other = await run(
    'node',
    [FAX_CLI, ...args, '--connection-id', 'other', '--idempotency-key', 'cli-1'],
    {
      env,
    },
  ).catch((error) => error);
  t.is(other.code, 2);
  t.regex(other.stderr, /--idempotency-key: This Idempotency-Key was used for a different request/);
});

test('after FAX_IDEMPOTENCY_SECONDS the same key queues a new fax', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const producer = createProducer({
    redis: pipeline.redis,
    keys: pipeline.keys,
    logger: createLogger('silent', 't'),
    idempotencySeconds: 1,
  });
  t.teardown(() => producer.close());
  const first = await producer.send(SEED_FAX, { idempotencyKey: 'short' });
  t.is(await producer.send(SEED_FAX, { idempotencyKey: 'short' }), first);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  t.not(await producer.send(SEED_FAX, { idempotencyKey: 'short' }), first);
});

test('a fax stored whose job was never queued (the producer died in between) is queued by the slot keeper and sent', async (t) => {
  const pipeline = await startPipeline(t, {
    slots: { outboxGraceMs: 200 },
    keeper: { intervalMs: 100, batch: 50, sweepMs: 1000 },
  });
  const faxId = 'stored-not-queued';
  const sink = {
    ...pipeline.runtime,
    redis: pipeline.redis,
    retryPolicy: pipeline.runtime.config.retryPolicy,
  };
  await storeFax(sink, faxId, { ...SEED_FAX });
  const entries = await pipeline.waitForFax(faxId, isFinal, 10_000);
  t.like(
    entries.find((entry) => entry.final),
    { event_type: 'fax.delivered' },
  );
  t.is(pipeline.simulator.lifecycle.stats.accepted, 1);
});
