import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import test from 'ava';
import { resolveRedis } from '../cli/runtime.ts';
import { loadConfig } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { connectRedis } from '../shared/redis.ts';
import { freePort, startRedisServer } from '../shared/redis-server.ts';
import { finalEntry, isFinal, queueFax, queueFaxes, SEED_FAX, startPipeline } from './helpers/pipeline.ts';
import { SEND_SEED_FAX } from './helpers/processes.ts';
import { testRedis } from './helpers/redis.ts';

const run = promisify(execFile);
const FAX = new URL('../cli/fax.mjs', import.meta.url).pathname;

test('fax send queues a fax that is delivered; fax status and fax events show it', async (t) => {
  const pipeline = await startPipeline(t);
  const env = { ...process.env, ...pipeline.env };
  const sent = await run('node', [FAX, ...SEND_SEED_FAX], { env });
  const { id } = JSON.parse(sent.stdout) as { id: string };
  await pipeline.waitForFax(id, isFinal);

  const status = JSON.parse((await run('node', [FAX, 'status', id], { env })).stdout) as Record<
    string,
    unknown
  >;
  t.like(status, { id, status: 'delivered', to: SEED_FAX.to, attempts: 1 });
  t.truthy(status.telnyx_fax_id);

  const events = (await run('node', [FAX, 'events'], { env })).stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  t.true(events.length >= 6);
  t.true(events.every((entry) => entry.fax_id === id));
  t.like(finalEntry(events), { event_type: 'fax.delivered', final: true });

  // Through a consumer group: everything once, then nothing more for the same group.
  const first = (await run('node', [FAX, 'events', '--group', 'billing'], { env })).stdout.trim().split('\n');
  t.is(first.length, events.length);
  t.is((await run('node', [FAX, 'events', '--group', 'billing'], { env })).stdout, '');
  // Replay: the group moved back to a time before the fax reads it all again.
  const before = new Date(Date.parse(events[0].occurred_at) - 60_000).toISOString();
  const replayed = await run('node', [FAX, 'events', '--group', 'billing', '--from', before, '--rewind'], {
    env,
  });
  t.is(replayed.stdout.trim().split('\n').length, events.length);
});

test('fax send with a bad number names the field, exits non-zero and queues nothing', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const env = { ...process.env, ...pipeline.env };
  const error = await t.throwsAsync(
    run(
      'node',
      [
        FAX,
        'send',
        '--to',
        '123',
        '--media-url',
        SEED_FAX.media_url,
        '--from',
        SEED_FAX.from,
        '--connection-id',
        'c',
      ],
      { env },
    ),
  );
  t.regex((error as unknown as { stderr: string }).stderr, /to must be an E\.164 number/);
  t.deepEqual(await pipeline.entries(), []);
});

test('fax events piped into a reader that stops early (head) ends quietly', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  // More entries than a pipe holds, so the writer is still writing when head has gone.
  await queueFaxes(pipeline, 400, (i) => ({ to: `+1312945${String(7000 + i).padStart(4, '0')}` }));
  const { stdout, stderr } = await run('sh', ['-c', `node ${FAX} events | head -n 1`], {
    env: { ...process.env, ...pipeline.env },
  });
  t.is(stdout.trim().split('\n').length, 1);
  t.is(stderr, '', 'no EPIPE stack trace');
});

test('fax status of an unknown id says so and exits non-zero', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const error = await t.throwsAsync(
    run('node', [FAX, 'status', 'nope'], { env: { ...process.env, ...pipeline.env } }),
  );
  t.regex((error as unknown as { stderr: string }).stderr, /no fax with id nope/);
});

test('a bad environment stops start-up with a message naming every bad variable', async (t) => {
  const error = await t.throwsAsync(
    run('node', [FAX, 'start', 'all'], {
      env: { ...process.env, PRODUCER_PORT: 'x', WEBHOOK_PORT: '-1', TELNYX_BASE_URL: 'nope' },
    }),
  );
  const stderr = (error as unknown as { stderr: string }).stderr;
  for (const name of ['PRODUCER_PORT', 'WEBHOOK_PORT', 'TELNYX_BASE_URL']) t.regex(stderr, new RegExp(name));
});

test('fax start all without a Telnyx key runs the sandbox end to end and stops cleanly on SIGTERM', async (t) => {
  const { url, prefix } = await testRedis(t);
  const [producerPort, webhookPort, simulatorPort] = [await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: url,
    FAX_KEY_PREFIX: prefix,
    FAX_STREAM_KEY: `${prefix}:events`,
    PRODUCER_PORT: String(producerPort),
    WEBHOOK_PORT: String(webhookPort),
    SIMULATOR_PORT: String(simulatorPort),
  };
  delete env.TELNYX_API_KEY;
  delete env.NODE_ENV;
  const child = spawn('node', [FAX, 'start', 'all'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + 20_000;
  while (!output.includes('ready: curl') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  t.regex(output, /SANDBOX MODE/);

  const response = await fetch(`http://127.0.0.1:${producerPort}/v2/faxes`, {
    method: 'POST',
    body: new URLSearchParams(SEED_FAX),
  });
  t.is(response.status, 202);
  const { data } = (await response.json()) as { data: { id: string } };
  let status = '';
  while (status !== 'delivered' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    status = (
      (await (await fetch(`http://127.0.0.1:${producerPort}/v2/faxes/${data.id}`)).json()) as {
        data: { status: string };
      }
    ).data.status;
  }
  t.is(status, 'delivered');
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.is(code, 0);
});

test('fax events --follow prints new entries as they happen and stops on SIGTERM', async (t) => {
  const pipeline = await startPipeline(t);
  const child = spawn('node', [FAX, 'events', '--follow'], {
    env: { ...process.env, ...pipeline.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  await new Promise((r) => setTimeout(r, 1500)); // the reader is (usually) blocked waiting by now
  const id = await queueFax(pipeline);
  const deadline = Date.now() + 15_000;
  while (!output.includes('"fax.delivered"') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const lines = output
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  t.true(lines.every((entry) => entry.fax_id === id));
  t.like(finalEntry(lines), { event_type: 'fax.delivered', final: true });
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.is(code, 0);
});

test('a private redis-server never passes off another process on its port as itself', async (t) => {
  const first = await startRedisServer();
  t.teardown(() => first.stop());
  await t.throwsAsync(startRedisServer({ port: first.port }), {
    message: /port \d+ is taken by another process/,
  });
  // (A port it picked itself and then found taken is given up for another pick.)
});

test('with no REDIS_URL and nothing on the local port, start-up runs a private redis-server', async (t) => {
  const port = await freePort();
  const { server, target: url } = await resolveRedis(loadConfig({}), createLogger('silent', 'test'), port);
  t.truthy(server);
  t.teardown(() => server?.stop());
  t.is(server?.port, port, 'on the port the one-shot commands look at');
  const redis = connectRedis(url);
  t.teardown(() => redis.disconnect());
  t.is(await redis.ping(), 'PONG');
  // And with that Redis answering, the next process uses it instead of starting another.
  const again = await resolveRedis(loadConfig({}), createLogger('silent', 'test'), server?.port);
  t.is(again.server, undefined);
  t.is(again.target, url);
});
