import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { ConfigError, loadConfig } from '../shared/config.ts';
import { applyEvent, type StreamEntry } from '../shared/events.ts';
import { createKeys } from '../shared/keys.ts';
import { connectRedis, waitReady } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { subscribe } from '../shared/subscribe.ts';
import { startWorkerService } from '../worker/main.ts';
import { sampleValue, scrape } from './helpers/metrics.ts';
import { assertConsistent } from './helpers/consistency.ts';
import { queueFax, SEED_FAX, startPipeline, type TestPipeline } from './helpers/pipeline.ts';
import { FAX_CLI, startFaxProcess } from './helpers/processes.ts';
import { startRedisCluster, type TestCluster } from './helpers/redis-cluster.ts';

const run = promisify(execFile);

// One 3-master cluster for the file; each test keeps to a key prefix (hash tag) of its own.
let cluster: TestCluster;
test.before(async () => {
  cluster = await startRedisCluster(3);
});
test.after.always(async () => {
  await cluster?.stop();
});

/** Every key under `prefix`, per master node (SCAN sees only the node's own keys). */
async function keysByNode(prefix: string): Promise<Map<number, string[]>> {
  const found = new Map<number, string[]>();
  for (const server of cluster.servers) {
    const node = new Redis(server.url);
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      found.set(server.port, keys);
    } finally {
      node.disconnect();
    }
  }
  return found;
}

/**
 * Two workers on the cluster: one in this process, one `fax start worker` configured by
 * REDIS_CLUSTER_NODES alone.
 */
async function startTwoWorkers(t: ExecutionContext, pipeline: TestPipeline, limits: Record<string, string>) {
  const worker = await startWorkerService(pipeline.runtime);
  t.teardown(() => worker.close());
  await startFaxProcess(
    t,
    'worker',
    { ...pipeline.env, ...limits, FAX_WEBHOOK_URL: pipeline.webhookUrl },
    'worker running',
  );
}

test('the whole pipeline on a 3-master Redis Cluster: every fax delivered once, channel limits held, every key in one slot, events through subscribe()', async (t) => {
  const limits = {
    FAX_ACCOUNT_CHANNEL_LIMIT: '3',
    FAX_CHANNEL_LIMIT: '2',
    TELNYX_RATE_LIMIT: 'none',
  };
  const pipeline = await startPipeline(t, {
    cluster,
    worker: false,
    env: limits,
    // Calls long enough to overlap however loaded the machine is, so the limits are reached.
    simulator: { stepMs: 20, callMs: 800, accountChannelLimit: 3, channelLimit: 2 },
  });
  t.true(pipeline.redis.isCluster, 'an ioredis Cluster client');
  t.regex(pipeline.keys.prefix, /^\{t[0-9a-f]{8}\}$/);

  // A consumer group follows the stream on a connection of its own while the faxes go through.
  const reader = connectRedis(cluster.target);
  t.teardown(() => reader.disconnect());
  const ids: string[] = [];
  const count = 12;
  const stop = new AbortController();
  const deadline = setTimeout(() => stop.abort(), 55_000);
  t.teardown(() => clearTimeout(deadline));
  const consumed = (async () => {
    const seen: StreamEntry[] = [];
    for await (const entry of subscribe({
      redis: reader,
      keys: pipeline.keys,
      group: 'billing',
      consumer: 'billing-1',
      from: 'beginning',
      blockMs: 200,
      signal: stop.signal,
    })) {
      seen.push(entry);
      const finals = new Set(seen.filter((e) => e.final).map((e) => e.fax_id));
      if (ids.length === count && ids.every((id) => finals.has(id))) break;
    }
    return seen;
  })();

  // Queued before any worker runs, so the first dispatches meet the limits at once.
  for (let i = 0; i < count; i++) {
    ids.push(
      await queueFax(pipeline, { ...SEED_FAX, connection_id: `c${(i % 2) + 1}`, to: `+1312945${7100 + i}` }),
    );
  }
  await startTwoWorkers(t, pipeline, limits);

  const statuses = await pipeline.waitForAll(ids, 50_000);
  t.deepEqual(new Set(statuses), new Set(['delivered']));
  const stats = pipeline.simulator.lifecycle.stats;
  for (const id of ids) t.is(stats.postsByFax[id], 1, `fax ${id} POSTed once`);
  t.deepEqual(stats.failuresByReason, {}, 'no call over a Telnyx channel limit');
  t.is(stats.maxDemand, 3, 'the account limit was reached and never passed');
  t.true((stats.maxDemandByConnection.c1 ?? 0) <= 2, JSON.stringify(stats.maxDemandByConnection));
  t.true((stats.maxDemandByConnection.c2 ?? 0) <= 2, JSON.stringify(stats.maxDemandByConnection));

  // The stream agrees: one final entry per fax, and the group got each of them once.
  const entries = await pipeline.entries();
  for (const id of ids) t.is(entries.filter((e) => e.fax_id === id && e.final).length, 1);
  // The metrics read the shared state (queues, slots, stream) through the cluster too.
  const samples = await scrape(pipeline.producerUrl);
  t.is(sampleValue(samples, 'fax_redis_up'), 1);
  t.is(sampleValue(samples, 'fax_delivered_total'), count);
  t.is(sampleValue(samples, 'fax_channel_limit', { scope: 'account' }), 3);
  t.is(sampleValue(samples, 'fax_stream_length'), entries.length);
  const seen = await consumed;
  t.false(stop.signal.aborted, 'the consumer saw every final entry in time');
  const finalsSeen = seen.filter((e) => e.final).map((e) => e.fax_id);
  t.deepEqual([...finalsSeen].sort(), [...ids].sort(), 'each final entry reached the group once');
  t.true(seen.some((e) => e.event_type === 'fax.submitted'));

  // The CLI reads the same records and stream through the cluster.
  const cli = (...args: string[]) =>
    run('node', [FAX_CLI, ...args], { env: { ...process.env, ...pipeline.env } });
  const [status, events] = await Promise.all([cli('status', ids[0] as string), cli('events')]);
  t.like(JSON.parse(status.stdout), { id: ids[0], status: 'delivered', attempts: 1 });
  const printed = events.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as StreamEntry);
  t.deepEqual(
    printed.map((e) => e.event_id),
    entries.map((e) => e.event_id),
  );

  // Every key of the pipeline — records, slots, rate limiter, stream, BullMQ's — sits in one slot
  // of one master; the other masters hold none of them.
  const byNode = await keysByNode(pipeline.keys.prefix);
  const holding = [...byNode.entries()].filter(([, keys]) => keys.length > 0);
  t.is(holding.length, 1, JSON.stringify([...byNode.entries()].map(([port, keys]) => [port, keys.length])));
  const [port, keys] = holding[0] as [number, string[]];
  t.true(
    keys.some((key) => key.startsWith(`${pipeline.keys.prefix}:bull:`)),
    'BullMQ keys too',
  );
  t.true(keys.includes(pipeline.keys.stream));
  const node = new Redis(`redis://127.0.0.1:${port}`);
  t.teardown(() => node.disconnect());
  const slots = new Set(await Promise.all(keys.map((key) => node.cluster('KEYSLOT', key))));
  t.is(slots.size, 1);
});

test("with the master of the pipeline's slot down, the producer answers 503; back up, the same processes take and deliver faxes again", async (t) => {
  // A cluster of this test's own: it stops a node.
  const own = await startRedisCluster(3);
  t.teardown(() => own.stop());
  const pipeline = await startPipeline(t, { cluster: own, simulator: { stepMs: 5, callMs: 10 } });
  await pipeline.waitForAll([await queueFax(pipeline)]);
  const port = await own.masterOf(pipeline.keys.stream);

  await own.stopNode(port);
  const post = () =>
    fetch(`${pipeline.producerUrl}/v2/faxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(SEED_FAX),
    });
  const refused = await post();
  t.is(refused.status, 503, await refused.text());

  // Back (empty: the test nodes keep nothing), with its slots: the same processes take faxes again.
  await own.startNode(port);
  const deadline = Date.now() + 40_000;
  let accepted = await post();
  while (accepted.status === 503 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    accepted = await post();
  }
  t.is(accepted.status, 202);
  const { data } = (await accepted.json()) as { data: { id: string } };
  t.deepEqual(await pipeline.waitForAll([data.id], 40_000), ['delivered']);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[data.id], 1);
});

test("a planned failover of the pipeline's master to its replica mid-load: the same processes go on, every fax delivered once, nothing lost", async (t) => {
  // A cluster of this test's own, each master with a replica.
  const own = await startRedisCluster(3, 60_000, 1);
  t.teardown(() => own.stop());
  const limits = { FAX_ACCOUNT_CHANNEL_LIMIT: '3', TELNYX_RATE_LIMIT: 'none' };
  const pipeline = await startPipeline(t, {
    cluster: own,
    worker: false,
    env: limits,
    simulator: { stepMs: 20, callMs: 1000, accountChannelLimit: 3 },
  });
  // Both workers up before the faxes come (a child process can take seconds to start on a busy machine).
  await startTwoWorkers(t, pipeline, limits);
  const ids: string[] = [];
  for (let i = 0; i < 18; i++) ids.push(await queueFax(pipeline, { ...SEED_FAX, to: `+1312945${7200 + i}` }));
  const stats = pipeline.simulator.lifecycle.stats;
  const deadline = Date.now() + 20_000;
  while (stats.delivered < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

  // Calls in flight, faxes waiting for a channel: the replica takes over (CLUSTER FAILOVER).
  const oldMaster = await own.masterOf(pipeline.keys.stream);
  const master = new Redis(`redis://127.0.0.1:${oldMaster}`);
  t.teardown(() => master.disconnect());
  // Its replica, from the master's own replication link (not the cluster's gossip, which may lag).
  let replicaPort = 0;
  const linked = Date.now() + 10_000;
  while (replicaPort === 0 && Date.now() < linked) {
    const info = (await master.info('replication')) as string;
    replicaPort = Number(/^slave\d+:ip=[^,]+,port=(\d+),state=online/m.exec(info)?.[1] ?? 0);
    if (replicaPort === 0) await new Promise((r) => setTimeout(r, 100));
  }
  t.true(replicaPort > 0, 'the master has a replica');
  const replica = new Redis(`redis://127.0.0.1:${replicaPort}`);
  t.teardown(() => replica.disconnect());
  const failoverStarted = Date.now();
  await replica.cluster('FAILOVER');
  const promoted = Date.now() + 20_000;
  while ((await own.masterOf(pipeline.keys.stream)) !== replicaPort && Date.now() < promoted) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(await own.masterOf(pipeline.keys.stream), replicaPort, 'the replica serves the slot now');
  t.log(
    `failover took ${Date.now() - failoverStarted} ms; ${stats.delivered} of ${ids.length} delivered by then`,
  );
  t.true(stats.delivered < ids.length, 'faxes were still to send');

  await assertConsistent(t, pipeline, ids, 'delivered', 50_000);
  for (const id of ids) t.is(stats.postsByFax[id], 1, `fax ${id} POSTed once`);
  t.deepEqual(stats.failuresByReason, {}, 'no call over a Telnyx channel limit');
  t.true(stats.maxDemand <= 3, `at most 3 calls at once (${stats.maxDemand})`);
});

test('without one hash tag, a script of the pipeline is refused by the cluster (what the configuration check prevents)', async (t) => {
  const redis = connectRedis(cluster.target);
  t.teardown(() => redis.disconnect());
  await waitReady(redis);
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const config = loadConfig({});
  const sink = {
    redis,
    keys: createKeys(prefix, `${prefix}:events`),
    streamMaxLen: 1000,
    slots: slotSettings(config.env, prefix),
    retryPolicy: config.retryPolicy,
  };
  const event = {
    eventId: randomUUID(),
    eventType: 'fax.received',
    faxId: undefined,
    status: undefined,
    occurredAt: new Date().toISOString(),
    direction: 'inbound' as const,
    payload: {},
    dedupe: true,
  };
  await t.throwsAsync(applyEvent(sink, event), { message: /CROSSSLOT/ });
  // The same event with the key names config.ts gives a cluster goes through.
  const tagged = `{${prefix}}`;
  const ok = await applyEvent({ ...sink, keys: createKeys(tagged, `${tagged}:events`) }, event);
  t.is(ok.outcome, 'published');
});

test('on a Redis Cluster the key names default to one hash tag, and names without a shared one are refused by name', (t) => {
  const nodes = '10.0.0.1:7000,10.0.0.2:7000';
  const defaults = loadConfig({ REDIS_CLUSTER_NODES: nodes }).env;
  t.is(defaults.FAX_KEY_PREFIX, '{fax}');
  t.is(defaults.FAX_STREAM_KEY, '{fax}:events');
  t.is(
    loadConfig({ REDIS_CLUSTER_NODES: nodes, FAX_KEY_PREFIX: 'app:{acme}' }).env.FAX_STREAM_KEY,
    'app:{acme}:events',
  );
  t.is(loadConfig({}).env.FAX_KEY_PREFIX, 'fax', 'one Redis keeps the plain names');

  const problems = (env: Record<string, string>) => {
    const error = t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: nodes, ...env }), {
      instanceOf: ConfigError,
    });
    return (error as ConfigError).problems.join('\n');
  };
  t.regex(problems({ FAX_KEY_PREFIX: 'fax' }), /^FAX_KEY_PREFIX: "fax" has no hash tag/);
  t.regex(
    problems({ FAX_KEY_PREFIX: '{}fax' }),
    /^FAX_KEY_PREFIX: .* has no hash tag/,
    'an empty tag is no tag',
  );
  t.regex(
    problems({ FAX_KEY_PREFIX: '{fax}', FAX_STREAM_KEY: 'fax:events' }),
    /^FAX_STREAM_KEY: "fax:events" must carry the hash tag of FAX_KEY_PREFIX \(\{fax\}\)/,
  );
  t.regex(problems({ FAX_KEY_PREFIX: '{fax}', FAX_STREAM_KEY: '{other}:events' }), /^FAX_STREAM_KEY/);
  t.regex(
    problems({ REDIS_URL: 'redis://127.0.0.1:6379' }),
    /^REDIS_CLUSTER_NODES: set REDIS_URL .* not both/,
  );
});

test('REDIS_CLUSTER_NODES takes host:port or redis[s]:// seed nodes and names a bad one', (t) => {
  const target = loadConfig({
    REDIS_CLUSTER_NODES: 'rediss://app:s3cret@10.0.0.1:7000, rediss://app:s3cret@[::1]:7001',
  }).redis;
  t.deepEqual(target, {
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '::1', port: 7001 },
    ],
    username: 'app',
    password: 's3cret',
    tls: true,
  });
  t.deepEqual(loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:6379' }).redis, {
    nodes: [{ host: 'redis-a', port: 6379 }],
    username: undefined,
    password: undefined,
    tls: false,
  });

  const problem = (value: string) => {
    const error = t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: value }), { instanceOf: ConfigError });
    return (error as ConfigError).problems.join('\n');
  };
  t.regex(problem('redis-a'), /^REDIS_CLUSTER_NODES: "redis-a": no port/);
  t.regex(problem(' , '), /^REDIS_CLUSTER_NODES: must list at least one node/);
  t.regex(problem('http://redis-a:6379'), /"http:\/\/redis-a:6379": scheme must be redis or rediss/);
  t.regex(problem('redis://redis-a:6379/2'), /no databases or options/);
  const mixed = problem('redis://:s3cret@a:1,b:2');
  t.regex(mixed, /same scheme .* and credentials/);
  t.notRegex(mixed, /s3cret/, 'a password never shows in the message');
  t.regex(mixed, /redis:\/\/:\*\*\*@a:1/);
});
