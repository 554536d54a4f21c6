import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Queue, Worker } from 'bullmq';
import { FAX_QUEUE } from '../shared/keys.ts';
import { startWorkerService } from '../worker/main.ts';
import { SLOT_KEEPER_DEFAULTS } from '../worker/slot-keeper.ts';
import { freePort, startRedisServer } from '../shared/redis-server.ts';
import { assertConsistent } from './helpers/consistency.ts';
import {
  queueFax,
  queueFaxes,
  SEED_FAX,
  startPipeline,
  type PipelineOptions,
  type TestPipeline,
} from './helpers/pipeline.ts';
import { startFaxProcess } from './helpers/processes.ts';
import { until } from './helpers/until.ts';

/**
 * Fault injection with real processes: workers (and a webhook service) are `fax start` children
 * killed with SIGKILL at chosen moments, Redis is a real server that is killed and restarted, and the
 * simulator misbehaves on demand. Every scenario ends with `assertConsistent`.
 */
const FAST = { FAX_WORKER_LOCK_SECONDS: '1', TELNYX_RATE_LIMIT: 'none', TELNYX_TIMEOUT_MS: '1000' };
const to = (i: number) => `+1312945${7100 + i}`;

async function faultPipeline(t: ExecutionContext, options: PipelineOptions) {
  const pipeline = await startPipeline(t, { ...options, worker: false, env: { ...FAST, ...options.env } });
  const workerEnv = { ...pipeline.env, ...FAST, ...options.env, FAX_WEBHOOK_URL: pipeline.webhookUrl };
  const startWorker = () => startFaxProcess(t, 'worker', workerEnv, 'worker running');
  return { pipeline, startWorker };
}

async function kill(child: ChildProcess) {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Another worker takes over; the fax must be found by asking Telnyx, never POSTed again. */
async function resumeAndExpectFound(
  t: ExecutionContext,
  pipeline: TestPipeline,
  startWorker: () => Promise<ChildProcess>,
  faxId: string,
) {
  pipeline.simulator.configure({ postLatencyMs: 0 });
  await startWorker();
  await assertConsistent(t, pipeline, [faxId]);
  t.is(pipeline.simulator.lifecycle.stats.posts, 1, 'never POSTed again');
  t.true(
    (await pipeline.entries()).some(
      (entry) => entry.detail === 'found at Telnyx after an interrupted submission; not sent again',
    ),
    'found by asking Telnyx, before any webhook said so',
  );
}

const queueMany = (pipeline: TestPipeline, count: number) =>
  queueFaxes(pipeline, count, (i) => ({ to: to(i) }));

test('a worker killed after claiming a fax but before its POST: another worker sends it, once', async (t) => {
  // One request every 2 s: the second fax has its slots and waits for its turn when the worker dies.
  const { pipeline, startWorker } = await faultPipeline(t, {
    env: { TELNYX_RATE_LIMIT: '0.5' },
    simulator: { stepMs: 5, callMs: 50 },
  });
  const ids = await queueMany(pipeline, 2);
  const first = await startWorker();
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.posts === 1, 'the first POST');
  await new Promise((resolve) => setTimeout(resolve, 300));
  await kill(first);
  t.is(stats.posts, 1, 'the second fax was not POSTed before the kill');
  await startWorker();
  await assertConsistent(t, pipeline, ids);
  t.is(stats.accepted, 2);
});

test('a worker killed during its POST (Telnyx creates the fax): the fax is found at Telnyx, not sent again', async (t) => {
  const { pipeline, startWorker } = await faultPipeline(t, {
    simulator: { stepMs: 5, callMs: 50, postLatencyMs: 1500, webhookDelayMs: 20_000 },
  });
  const [id] = await queueMany(pipeline, 1);
  const first = await startWorker();
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.posts === 1, 'the POST');
  await kill(first);
  await resumeAndExpectFound(t, pipeline, startWorker, id as string);
});

test('a worker killed during a POST made after a 5xx and a lookup: the next lookup waits for that POST to settle, and finds it', async (t) => {
  // Telnyx answers the first POST 500 (it may have the fax: asked before sending again); the second
  // POST is created only after 9 s, and its worker dies before any answer.
  const { pipeline, startWorker } = await faultPipeline(t, {
    env: { TELNYX_TIMEOUT_MS: '6000' },
    simulator: { stepMs: 5, callMs: 50, failNextPosts: [500], createDelayMs: 9000, webhookDelayMs: 5000 },
  });
  const [id] = await queueMany(pipeline, 1);
  const first = await startWorker();
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.posts === 2, 'the POST after the lookup', 20_000);
  t.is(stats.lists, 1, 'Telnyx was asked before the second POST');
  await kill(first);
  // The next worker takes the job over within a second or two, while Telnyx is still creating the fax:
  // asking now would find nothing. It must wait until that POST has surely ended there.
  await startWorker();
  await assertConsistent(t, pipeline, [id as string]);
  t.is(stats.posts, 2, 'never POSTed a third time');
  t.is(stats.accepted, 1, 'one fax at Telnyx');
});

test('a worker killed during a POST sent long after its claim (a 429 pause): the next run waits for that POST to settle', async (t) => {
  // The first POST gets a 429 with a 7 s reset; the second goes out 7 s after the claim and is created
  // at Telnyx 5 s later (within twice the 3 s timeout); its worker dies meanwhile.
  const { pipeline, startWorker } = await faultPipeline(t, {
    env: { TELNYX_TIMEOUT_MS: '3000' },
    simulator: { stepMs: 5, callMs: 50, failNextPosts: [429], retryAfterSeconds: 7, createDelayMs: 5000 },
  });
  const [id] = await queueMany(pipeline, 1);
  const first = await startWorker();
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.posts === 2, 'the POST after the 429 pause', 30_000);
  await kill(first);
  await startWorker();
  await assertConsistent(t, pipeline, [id as string]);
  t.is(stats.posts, 2, 'never POSTed a third time');
  t.is(stats.accepted, 1, 'one fax at Telnyx');
});

test("a worker killed after Telnyx's 202 but before recording it: the fax is found at Telnyx, not sent again", async (t) => {
  const { pipeline, startWorker } = await faultPipeline(t, {
    // Webhooks late enough that only asking Telnyx can find the fax first, even on a busy machine
    // (a new worker process to start, its lock to expire, the POST's settle time to wait out).
    simulator: { stepMs: 5, callMs: 50, postLatencyMs: 800, webhookDelayMs: 20_000 },
  });
  const [id] = await queueMany(pipeline, 1);
  const first = await startWorker();
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.posts === 1, 'the POST');
  // Writes stop while the 202 is on its way: the worker has its answer and cannot record it.
  await pipeline.redis.call('CLIENT', 'PAUSE', '10000', 'WRITE');
  await new Promise((resolve) => setTimeout(resolve, 1200));
  await kill(first);
  await pipeline.redis.call('CLIENT', 'UNPAUSE');
  t.is(
    await pipeline.redis.hget(pipeline.keys.fax(id as string), 'status'),
    'queued',
    'the 202 was never recorded',
  );
  await resumeAndExpectFound(t, pipeline, startWorker, id as string);
});

test('a webhook service killed mid-request loses no event: Telnyx retries until a new one takes it', async (t) => {
  const port = await freePort();
  const webhookUrl = `http://127.0.0.1:${port}/webhooks/telnyx`;
  const pipeline = await startPipeline(t, {
    worker: false,
    env: { ...FAST, FAX_ACCOUNT_CHANNEL_LIMIT: '2' },
    simulator: { stepMs: 20, callMs: 150, webhookAttempts: 12 },
  });
  const env = {
    ...pipeline.env,
    ...FAST,
    FAX_ACCOUNT_CHANNEL_LIMIT: '2',
    FAX_WEBHOOK_URL: webhookUrl,
    WEBHOOK_PORT: String(port),
    TELNYX_PUBLIC_KEY: pipeline.simulator.publicKey,
  };
  const startWebhook = () => startFaxProcess(t, 'webhook', env, 'webhook service listening');
  const webhook = await startWebhook();
  await startFaxProcess(t, 'worker', env, 'worker running');
  const ids = await queueMany(pipeline, 8);
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.webhooksSent >= 6, 'some webhooks taken in');
  await kill(webhook);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await startWebhook();
  await assertConsistent(t, pipeline, ids);
  t.true(stats.webhooksFailed > 0, 'webhooks failed while it was down, and were sent again');
});

test('Redis killed and restarted mid-run (AOF): nothing acknowledged is lost, the services answer 503 meanwhile and resume', async (t) => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fax-aof-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let redis = await startRedisServer({ port, dir, appendOnly: true });
  t.teardown(() => redis.stop());
  const { pipeline, startWorker } = await faultPipeline(t, {
    redisUrl: redis.url,
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '2' },
    simulator: { stepMs: 20, callMs: 200, webhookAttempts: 12 },
  });
  await startWorker();
  const ids = await queueMany(pipeline, 8);
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.delivered >= 2, 'some faxes delivered');
  await kill(redis.process);

  const refused = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, to: to(50) }),
  });
  t.is(refused.status, 503, 'the producer says so instead of dropping the fax');
  const webhook = JSON.stringify({
    data: {
      event_type: 'fax.delivered',
      id: 'while-down',
      occurred_at: new Date().toISOString(),
      payload: {},
    },
  });
  const unstored = await fetch(pipeline.webhookUrl, {
    method: 'POST',
    headers: pipeline.simulator.signerHeaders(webhook),
    body: webhook,
  });
  t.is(unstored.status, 503, 'the webhook service too, so Telnyx retries');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  redis = await startRedisServer({ port, dir, appendOnly: true });
  // A 503 said "try again": once the producer has reconnected, it takes the fax.
  let late: string | undefined;
  await until(async () => {
    late = await queueFax(pipeline, { ...SEED_FAX, to: to(51) }).catch(() => undefined);
    return late !== undefined;
  }, 'the producer taking faxes again');
  ids.push(late as string);
  await assertConsistent(t, pipeline, ids);
});

test('Telnyx misbehaving: 5xx, 429, duplicated, reordered and lost webhooks; every fax ends once, none sent twice', async (t) => {
  const { pipeline, startWorker } = await faultPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '3', FAX_SLOT_LEASE_SECONDS: '1' },
    simulator: {
      stepMs: 10,
      callMs: 60,
      failNextPosts: [500, 429, 503, 429, 502],
      retryAfterSeconds: 0,
      duplicateWebhooks: true,
      reorderWebhooks: true,
    },
  });
  await startWorker();
  await startWorker();
  const ids = await queueMany(pipeline, 10);
  // Later faxes lose their final webhook: only the leases' reconciliation can end them.
  pipeline.simulator.configure({ dropTerminalWebhooks: true });
  await assertConsistent(t, pipeline, ids);
});

test('a fax whose job used up its attempts on errors other than failed POSTs is given its job again and sent', async (t) => {
  const pipeline = await startPipeline(t, {
    worker: false,
    env: { FAX_RETRY_DELAY_SCALE: '0.001' },
    simulator: { stepMs: 5, callMs: 20 },
  });
  const [id] = await queueMany(pipeline, 1);
  // A worker that fails every run before it sends anything (an outage, a bug): BullMQ fails the job.
  const broken = new Worker(
    FAX_QUEUE,
    async () => {
      throw new Error('Redis went away mid-run');
    },
    { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix },
  );
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  await until(async () => (await queue.getJobState(id as string)) === 'failed', 'the job failed for good');
  await broken.close();
  t.is(await pipeline.redis.hget(pipeline.keys.fax(id as string), 'status'), 'queued');

  const worker = await startWorkerService(pipeline.runtime, {
    keeper: { ...SLOT_KEEPER_DEFAULTS, intervalMs: 100, failedScanMs: 200 },
  });
  t.teardown(() => worker.close());
  await assertConsistent(t, pipeline, [id as string]);
  t.is(pipeline.simulator.lifecycle.stats.accepted, 1);
});

test('a failed job of a queued fax behind many newer failed jobs of faxes that moved on is still found and sent', async (t) => {
  const pipeline = await startPipeline(t, {
    worker: false,
    env: { FAX_RETRY_DELAY_SCALE: '0.001' },
    simulator: { stepMs: 5, callMs: 20 },
  });
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  // A worker that fails every run before it sends anything: the oldest failure is a queued fax's,
  // the four newer ones are of faxes that have ended since.
  const broken = new Worker(
    FAX_QUEUE,
    async () => {
      throw new Error('Redis went away mid-run');
    },
    { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix },
  );
  const failed = async (id: string) =>
    until(async () => (await queue.getJobState(id)) === 'failed', `the job of ${id} failed for good`);
  const [oldest] = await queueMany(pipeline, 1);
  await failed(oldest as string);
  const ended = await queueFaxes(pipeline, 4, (i) => ({ to: to(i + 1) }));
  for (const id of ended) await failed(id);
  await broken.close();
  for (const id of ended) await pipeline.redis.hset(pipeline.keys.fax(id), 'status', 'delivered');

  // Three failed jobs a scan: the newest three are all of faxes that moved on.
  const worker = await startWorkerService(pipeline.runtime, {
    keeper: { ...SLOT_KEEPER_DEFAULTS, intervalMs: 100, failedScanMs: 200, failedScanBatch: 3 },
  });
  t.teardown(() => worker.close());
  await assertConsistent(t, pipeline, [oldest as string]);
  t.is(pipeline.simulator.lifecycle.stats.accepted, 1);
});

test('a worker frozen past its lock while it waits out a 429: the run that took over sends the fax, the frozen one, waking, sends nothing', async (t) => {
  const { pipeline, startWorker } = await faultPipeline(t, {
    env: { TELNYX_TIMEOUT_MS: '2000' },
    simulator: { stepMs: 5, callMs: 50, failNextPosts: [429], retryAfterSeconds: 2, webhookDelayMs: 3000 },
  });
  const workers = [await startWorker(), await startWorker()];
  const logs = new Map(workers.map((child) => [child, '']));
  for (const child of workers) {
    child.stdout?.on('data', (chunk: Buffer) => logs.set(child, `${logs.get(child)}${chunk}`));
    t.teardown(() => {
      child.kill('SIGCONT');
    });
  }
  const [id] = await queueMany(pipeline, 1);
  const stats = pipeline.simulator.lifecycle.stats;
  const throttled = () => workers.find((child) => logs.get(child)?.includes('Telnyx rate limit (429)'));
  await until(() => throttled() !== undefined, 'a 429 taken');
  const frozen = throttled() as ChildProcess;
  // A GC pause, a VM freeze, a partition from Redis: its lock runs out and the other worker takes over.
  frozen.kill('SIGSTOP');
  pipeline.simulator.configure({ postLatencyMs: 1500 });
  await until(() => stats.posts === 2, 'the run that took over POSTs (after asking Telnyx)', 30_000);
  t.is(stats.lists, 1, 'it asked Telnyx first');
  frozen.kill('SIGCONT'); // wakes while that POST is on its way
  await new Promise((resolve) => setTimeout(resolve, 4000));
  t.is(stats.posts, 2, 'the frozen run never POSTs');
  t.is(stats.accepted, 1, 'one fax at Telnyx');
  pipeline.simulator.configure({ postLatencyMs: 0 });
  await assertConsistent(t, pipeline, [id as string]);
});
