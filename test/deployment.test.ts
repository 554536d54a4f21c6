import { readFileSync } from 'node:fs';
import test from 'ava';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../shared/config.ts';

const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'), {
  merge: true,
});
const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');

test('compose runs Redis with AOF and noeviction, and producer, worker and webhook from the image', (t) => {
  const redis = compose.services.redis;
  t.true(
    redis.command.includes('--appendonly') &&
      redis.command[redis.command.indexOf('--appendonly') + 1] === 'yes',
  );
  t.is(redis.command[redis.command.indexOf('--maxmemory-policy') + 1], 'noeviction');
  t.deepEqual(compose.services.producer.command, ['start', 'producer']);
  t.deepEqual(compose.services.worker.command, ['start', 'worker']);
  t.deepEqual(compose.services.webhook.command, ['start', 'webhook']);
  t.is(compose.services.worker.ports, undefined, 'workers publish no port, so --scale worker=N works');
});

// What a deployment's .env would hold for compose's required variables.
const deployment: Record<string, string> = {
  TELNYX_API_KEY: 'KEY123',
  TELNYX_PUBLIC_KEY: Buffer.alloc(32, 1).toString('base64'),
  FAX_API_TOKEN: 'a-token-of-sufficient-length',
};

/** Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}`, resolved as compose does. */
function interpolate(value: string): string {
  return value.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_, name: string, op?: string, arg?: string) => {
    const given = deployment[name];
    if (given !== undefined) return given;
    if (op === '?') throw new Error(`${name} is required by compose`);
    return op === '-' ? (arg ?? '') : '';
  });
}

test("compose's environment names and ports are ones the code reads, with values it accepts", (t) => {
  for (const name of ['producer', 'worker', 'webhook']) {
    const environment = compose.services[name].environment as Record<string, unknown>;
    const env = Object.fromEntries(
      Object.entries(environment).map(([key, value]) => [key, interpolate(String(value))]),
    );
    const config = loadConfig(env);
    t.false(config.sandbox, name);
    for (const key of Object.keys(environment))
      t.true(key in config.env, `${name}: ${key} is read by the code`);
    t.is(config.env.REDIS_URL, 'redis://redis:6379');
  }
  t.deepEqual(compose.services.producer.ports, [
    `${compose.services.producer.environment.PRODUCER_PORT}:3000`,
  ]);
  t.deepEqual(compose.services.webhook.ports, [`${compose.services.webhook.environment.WEBHOOK_PORT}:3001`]);
});

test('the Dockerfile copies every source folder the services import', (t) => {
  for (const folder of ['shared', 'producer', 'worker', 'webhook', 'simulator', 'cli']) {
    t.true(dockerfile.includes(`COPY ${folder} ./${folder}`), folder);
  }
  t.true(dockerfile.includes('npm ci --omit=dev'));
});

test('a bad configuration names every bad variable at once', (t) => {
  const error = t.throws(
    () => loadConfig({ PRODUCER_PORT: 'http', REDIS_URL: 'localhost', FAX_FROM: '555', LOG_LEVEL: 'loud' }),
    { instanceOf: ConfigError },
  );
  const named = error?.problems.map((p) => p.split(':')[0]).sort();
  t.deepEqual(named, ['FAX_FROM', 'LOG_LEVEL', 'PRODUCER_PORT', 'REDIS_URL']);
});

test('production without a Telnyx key refuses to start; without NODE_ENV it is sandbox mode', (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), { message: /TELNYX_API_KEY/ });
  t.true(loadConfig({}).sandbox);
});

test('a variable set to nothing (PORT= in a compose file) takes its default, never port 0 or every interface', (t) => {
  const blank = [
    'FAX_BIND_HOST',
    'PRODUCER_PORT',
    'WEBHOOK_PORT',
    'SIMULATOR_PORT',
    'FAX_WORKER_CONCURRENCY',
    'FAX_WORKER_LOCK_SECONDS',
    'FAX_SLOT_LEASE_SECONDS',
    'FAX_LIMIT_BACKOFF_SECONDS',
    'FAX_RETRY_DELAY_SCALE',
    'FAX_SHUTDOWN_SECONDS',
    'FAX_STREAM_MAXLEN',
    'LOG_LEVEL',
  ];
  const { env } = loadConfig(Object.fromEntries(blank.map((name) => [name, ''])));
  const { env: defaults } = loadConfig({});
  for (const name of blank) {
    t.deepEqual(env[name as keyof typeof env], defaults[name as keyof typeof defaults], name);
  }
  t.is(env.FAX_BIND_HOST, '127.0.0.1');
  t.is(env.PRODUCER_PORT, 3000);
});
