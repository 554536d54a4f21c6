import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import { freePort } from '../shared/redis-server.ts';
import { readLimits } from '../shared/slots/limits.ts';
import { assertConsistent } from './helpers/consistency.ts';
import { queueFaxes, startPipeline, type TestPipeline } from './helpers/pipeline.ts';
import { startFaxProcess } from './helpers/processes.ts';

/**
 * Graceful shutdown with real `fax start` processes: SIGTERM while they hold work, then the exit code,
 * what they left in Redis, and a new process finishing the job — every fax sent exactly once.
 */
const to = (i: number) => `+1312945${7500 + i}`;

async function until(done: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not in time: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sends SIGTERM and resolves to how the process ended, with what it logged meanwhile. */
async function terminate(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.kill('SIGTERM');
  const [code] = await exited;
  return { code, output };
}

async function workerPipeline(t: ExecutionContext, env: Record<string, string>, simulator = {}) {
  const pipeline = await startPipeline(t, { worker: false, env, simulator });
  const workerEnv = { ...pipeline.env, FAX_WEBHOOK_URL: pipeline.webhookUrl, FAX_SHUTDOWN_SECONDS: '20' };
  const startWorker = () => startFaxProcess(t, 'worker', workerEnv, 'worker running');
  return { pipeline, startWorker };
}

/** What a stopped worker must leave: no job held, no slot held by a fax not at Telnyx, no mark. */
async function assertNothingHeld(t: ExecutionContext, pipeline: TestPipeline, ids: readonly string[]) {
  const { redis, keys } = pipeline;
  t.is(await redis.llen(`${keys.bullPrefix}:faxes:active`), 0, 'no job left active');
  for (const id of ids) {
    const [status, slots, submitting, telnyxFaxId] = await redis.hmget(
      keys.fax(id),
      'status',
      'slots',
      'submitting',
      'telnyx_fax_id',
    );
    if (status !== 'queued') continue;
    t.falsy(slots, `${id}: an unsent fax holds no slot`);
    t.falsy(submitting, `${id}: not marked as being submitted`);
    t.falsy(telnyxFaxId);
  }
}

test('SIGTERM mid-load: the worker finishes or hands back its faxes and exits 0; a new worker sends each exactly once', async (t) => {
  t.timeout(120_000);
  // Six channels, one POST every 250 ms: at any moment several faxes hold slots and wait their turn.
  const { pipeline, startWorker } = await workerPipeline(
    t,
    { FAX_ACCOUNT_CHANNEL_LIMIT: '6', TELNYX_RATE_LIMIT: '4' },
    { stepMs: 20, callMs: 300 },
  );
  const ids = await queueFaxes(pipeline, 20, (i) => ({ to: to(i) }));
  const first = await startWorker();
  const stats = pipeline.simulator.lifecycle.stats;
  await until(() => stats.accepted >= 2, 'a few faxes sent');

  const { code, output } = await terminate(first);
  t.is(code, 0, 'a clean exit within FAX_SHUTDOWN_SECONDS');
  t.regex(output, /handed back to the queue, unsent/, 'faxes waiting for their turn were handed back');
  t.true(stats.accepted < ids.length, 'it stopped mid-load');
  await assertNothingHeld(t, pipeline, ids);

  await startWorker();
  await assertConsistent(t, pipeline, ids, 'delivered', 60_000);
  t.is(stats.accepted, ids.length);
  t.is(stats.posts, ids.length, 'no fax POSTed twice');
  t.is(stats.lists, 0, 'nothing had to be looked up at Telnyx: no POST was left in doubt');
});

test('a worker caught in a 429 loop hands its faxes back on SIGTERM, slots freed, and exits 0 before Telnyx lets up', async (t) => {
  t.timeout(120_000);
  // Telnyx answers 429 with a 60 s reset; the shutdown deadline is 20 s.
  const { pipeline, startWorker } = await workerPipeline(
    t,
    { TELNYX_RATE_LIMIT: 'none' },
    { stepMs: 10, callMs: 50, failNextPosts: Array(50).fill(429), retryAfterSeconds: 60 },
  );
  const ids = await queueFaxes(pipeline, 3, (i) => ({ to: to(40 + i) }));
  const first = await startWorker();
  const stats = pipeline.simulator.lifecycle.stats;
  const store = { redis: pipeline.redis, keys: pipeline.keys, slots: pipeline.runtime.slots };
  const account = async () => (await readLimits(store)).scopes.find((s) => s.scope === 'account');
  await until(
    async () => stats.posts >= 1 && (await account())?.inFlight === 2,
    'two faxes holding channels, throttled',
  );

  const { code, output } = await terminate(first);
  const throttled = stats.posts;
  t.is(code, 0, 'exited cleanly, not forced at the deadline');
  t.regex(output, /handed back to the queue, unsent/);
  t.is(stats.accepted, 0);
  const busy = (await readLimits(store)).scopes.filter((scope) => scope.inFlight > 0);
  t.deepEqual(busy, [], 'every channel given back');
  await assertNothingHeld(t, pipeline, ids);

  // Telnyx lets up (its 60 s cut short: the pipeline's shared pause is lifted).
  pipeline.simulator.configure({ failNextPosts: [] });
  await pipeline.redis.del(pipeline.keys.rate.pause);
  await startWorker();
  await assertConsistent(t, pipeline, ids);
  t.is(stats.posts - throttled, ids.length, 'each fax POSTed once after the 429s');
});

test('a webhook service told to stop answers the webhooks it has received, refuses new connections, and exits 0', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const port = await freePort();
  const child = await startFaxProcess(
    t,
    'webhook',
    { ...pipeline.env, WEBHOOK_PORT: String(port), TELNYX_PUBLIC_KEY: pipeline.simulator.publicKey },
    'webhook service listening',
  );
  const url = `http://127.0.0.1:${port}/webhooks/telnyx`;
  const body = JSON.stringify({
    data: { event_type: 'fax.received', id: 'draining-1', payload: { direction: 'inbound' } },
  });
  // Writes held: the webhook is received and mid-way through being stored when the signal comes.
  await pipeline.redis.call('CLIENT', 'PAUSE', '20000', 'WRITE');
  t.teardown(() => pipeline.redis.call('CLIENT', 'UNPAUSE').catch(() => undefined));
  const answer = fetch(url, { method: 'POST', headers: pipeline.simulator.signerHeaders(body), body });
  const storing = async () =>
    String(await pipeline.redis.call('CLIENT', 'LIST'))
      .split('\n')
      .some((line) => line.includes('name=fax-webhook ') && /flags=\w*b/.test(line));
  await until(storing, 'the webhook being stored');

  const exit = terminate(child);
  await until(
    () =>
      fetch(url, { method: 'POST', body }).then(
        () => false,
        () => true,
      ),
    'new connections refused',
  );
  await pipeline.redis.call('CLIENT', 'UNPAUSE');
  const response = await answer;
  t.is(response.status, 200, 'the webhook it had was stored and answered');
  t.deepEqual(await response.json(), { result: 'published' });
  t.is((await exit).code, 0);
  t.true(
    (await pipeline.entries()).some((entry) => entry.event_id === 'draining-1'),
    'and it is on the stream',
  );
});
