import { Writable } from 'node:stream';
import test from 'ava';
import { createProducerApp } from '../producer/http-app.ts';
import { createProducer } from '../producer/producer.ts';
import { listen } from '../shared/http-server.ts';
import { createKeys } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { connectRedis } from '../shared/redis.ts';
import { freePort } from '../shared/redis-server.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { startSimulatorService } from '../simulator/main.ts';
import { SEED_FAX } from './helpers/pipeline.ts';
import { testRedis } from './helpers/redis.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger('debug', 'test', stream) };
}

test('API tokens never reach the logs, even from failing requests and logged config', async (t) => {
  const { url, prefix } = await testRedis(t);
  const { lines, logger } = capture();
  const redis = connectRedis(url);
  t.teardown(() => redis.disconnect());
  const token = 'secret-token-1234567890';
  const producer = createProducer({ redis, keys: createKeys(prefix, `${prefix}:events`), logger });
  t.teardown(() => producer.close());
  const server = await listen(createProducerApp({ producer, logger, apiToken: token }), 0, '127.0.0.1');
  t.teardown(() => server.close());
  await fetch(`${server.url}/v2/faxes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(SEED_FAX),
  });
  logger.info(
    {
      headers: { authorization: `Bearer ${token}` },
      env: { TELNYX_API_KEY: 'KEYsecret', FAX_API_TOKEN: token },
    },
    'x',
  );
  const all = lines.join('');
  t.true(lines.length >= 2);
  t.false(all.includes(token));
  t.false(all.includes('KEYsecret'));
});

test('the simulator enforces its channel limit the way Telnyx does and counts what it received', async (t) => {
  const logger = createLogger('silent', 'test');
  const sim = await startSimulatorService(logger, 0, '127.0.0.1', {
    apiKey: 'k',
    channelLimit: 1,
    stepMs: 5,
    callMs: 200,
  });
  t.teardown(() => sim.close());
  const client = createTelnyxClient({ apiKey: 'k', baseUrl: `${sim.url}/v2`, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const first = await client.submitFax({ ...SEED_FAX });
  const second = await client.submitFax({ ...SEED_FAX, to: '+13129457421' });
  t.is(first.kind, 'accepted');
  t.is(second.kind, 'accepted', 'over the limit is still a 202');
  const secondId = second.kind === 'accepted' ? second.fax.id : '';
  const deadline = Date.now() + 3000;
  while ((await client.getFax(secondId))?.status !== 'failed' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.like(await client.getFax(secondId), {
    status: 'failed',
    failure_reason: 'connection_channel_limit_exceeded',
  });
  t.is(sim.simulator.lifecycle.stats.maxInFlight, 1);
});

test('a 429 from Telnyx is classified as retryable with the wait Telnyx asks for', async (t) => {
  const logger = createLogger('silent', 'test');
  const sim = await startSimulatorService(logger, 0, '127.0.0.1', {
    apiKey: 'k',
    failNextPosts: [429, 401],
    retryAfterSeconds: 3,
  });
  t.teardown(() => sim.close());
  const client = createTelnyxClient({ apiKey: 'k', baseUrl: `${sim.url}/v2`, timeoutMs: 5000 });
  t.teardown(() => client.close());
  t.like(await client.submitFax({ ...SEED_FAX }), {
    kind: 'retryable',
    status: 429,
    retryAfterMs: 3000,
    ambiguous: false,
  });
  t.like(await client.submitFax({ ...SEED_FAX }), { kind: 'rejected', status: 401 });
  t.is(sim.simulator.lifecycle.stats.accepted, 0);
  const wrongKey = createTelnyxClient({ apiKey: 'nope', baseUrl: `${sim.url}/v2`, timeoutMs: 5000 });
  t.teardown(() => wrongKey.close());
  t.like(await wrongKey.submitFax({ ...SEED_FAX }), { kind: 'rejected', status: 401 });
});

test('a refused connection certainly created no fax; a timeout may have; a 5xx may have', async (t) => {
  const logger = createLogger('silent', 'test');
  const refused = createTelnyxClient({
    apiKey: 'k',
    baseUrl: `http://127.0.0.1:${await freePort()}/v2`,
    timeoutMs: 2000,
  });
  t.teardown(() => refused.close());
  t.like(await refused.submitFax({ ...SEED_FAX }), { kind: 'retryable', ambiguous: false });

  const sim = await startSimulatorService(logger, 0, '127.0.0.1', { apiKey: 'k', latencyMs: 500 });
  t.teardown(() => sim.close());
  const impatient = createTelnyxClient({ apiKey: 'k', baseUrl: `${sim.url}/v2`, timeoutMs: 100 });
  t.teardown(() => impatient.close());
  t.like(await impatient.submitFax({ ...SEED_FAX }), { kind: 'retryable', ambiguous: true });

  const failing = await startSimulatorService(logger, 0, '127.0.0.1', { apiKey: 'k', failNextPosts: [503] });
  t.teardown(() => failing.close());
  const client = createTelnyxClient({ apiKey: 'k', baseUrl: `${failing.url}/v2`, timeoutMs: 2000 });
  t.teardown(() => client.close());
  t.like(await client.submitFax({ ...SEED_FAX }), { kind: 'retryable', status: 503, ambiguous: true });
  t.is(await client.getFax('no-such-fax'), undefined, 'a 404 is "no such fax"');
});
