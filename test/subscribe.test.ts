import { spawn } from 'node:child_process';
import { once } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import { applyEvent, type StreamEntry } from '../shared/events.ts';
import { subscribe } from '../shared/subscribe.ts';
import { inboundEvent, testSink } from './helpers/redis.ts';
import { until } from './helpers/until.ts';

const STALLING_CONSUMER = new URL('./helpers/stalling-consumer.ts', import.meta.url).pathname;

/** A stream with `count` published events (not ours: inbound, so no fax record is needed). */
async function setup(t: ExecutionContext) {
  const { redis, keys, sink } = await testSink(t);
  const publish = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await applyEvent(sink, inboundEvent({ n: String(i) }));
    }
  };
  /** Reads everything there is through a group, then stops (no follow). */
  const drain = async (
    group: string,
    consumer: string,
    extra: Partial<Parameters<typeof subscribe>[0]> = {},
  ) => {
    const seen: StreamEntry[] = [];
    for await (const entry of subscribe({
      redis,
      keys,
      group,
      consumer,
      from: 'beginning',
      follow: false,
      ...extra,
    })) {
      seen.push(entry);
    }
    return seen;
  };
  return { redis, keys, publish, drain };
}

const ns = (entries: StreamEntry[]) => entries.map((entry) => (entry.payload as { n: string }).n);

test('each group gets every entry once; a consumer that died with entries unacknowledged has them taken back', async (t) => {
  const s = await setup(t);
  await s.publish(10);
  // Consumer a of group billing dies while handling its 4th entry: 1–3 acknowledged, the 4th not.
  let handled = 0;
  await t.throwsAsync(async () => {
    for await (const entry of subscribe({
      redis: s.redis,
      keys: s.keys,
      group: 'billing',
      consumer: 'a',
      from: 'beginning',
      follow: false,
    })) {
      if (++handled === 4) throw new Error(`crashed on ${(entry.payload as { n: string }).n}`);
    }
  });
  // b, in the same group, gets the rest, and takes a's unacknowledged entry back once it is idle.
  const b = await s.drain('billing', 'b', { claimIdleMs: 0 });
  t.deepEqual(ns(b).sort(), ['3', '4', '5', '6', '7', '8', '9']);
  t.deepEqual(await s.drain('billing', 'b', { claimIdleMs: 0 }), [], 'nothing twice');
  // Another group reads independently, from the beginning.
  t.deepEqual(ns(await s.drain('audit', 'x')), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  const pending = (await s.redis.xpending(s.keys.stream, 'billing')) as [number, ...unknown[]];
  t.is(pending[0], 0, 'everything acknowledged');
});

test('two groups each handle every entry exactly once across a consumer process killed holding unacknowledged entries', async (t) => {
  const { url, redis, keys, sink } = await testSink(t);
  const { prefix } = keys;
  for (let i = 0; i < 20; i++) await applyEvent(sink, inboundEvent({ n: String(i) }));
  const consumer = (group: string, name: string, stallAt: number) => {
    const env = {
      REDIS_URL: url,
      PREFIX: prefix,
      GROUP: group,
      CONSUMER: name,
      STALL_AT: String(stallAt),
      CLAIM_IDLE_MS: '1000',
    };
    const child = spawn('node', ['--import', 'tsx', STALLING_CONSUMER], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.teardown(() => child.kill('SIGKILL'));
    return child;
  };
  // billing/a reads a batch of entries, handles 4 and hangs on the 5th: killed, holding the rest unacknowledged.
  const a = consumer('billing', 'a', 5);
  let output = '';
  a.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await until(() => output.includes('stalled'), 'billing/a stalled on its 5th entry', 30_000);
  const exited = once(a, 'exit');
  a.kill('SIGKILL');
  await exited;
  const [held] = (await redis.xpending(keys.stream, 'billing')) as [number, ...unknown[]];
  t.true(held > 1, `killed holding ${held} unacknowledged entries`);

  // billing/b takes them back once idle (claimIdleMs 1 s); audit/x reads everything on its own.
  consumer('billing', 'b', 0);
  consumer('audit', 'x', 0);
  const handled = async (group: string) =>
    Object.values(await redis.hgetall(`${prefix}:handled:${group}`)).map(Number);
  for (const group of ['billing', 'audit']) {
    await until(async () => (await handled(group)).length === 20, `${group} handled all 20`, 30_000);
  }
  // Time for a second handling of anything to show, were there one.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  for (const group of ['billing', 'audit']) {
    const counts = await handled(group);
    t.is(counts.length, 20, `${group}: every entry`);
    t.true(
      counts.every((count) => count === 1),
      `${group}: each exactly once`,
    );
    const [pending] = (await redis.xpending(keys.stream, group)) as [number, ...unknown[]];
    t.is(pending, 0, `${group}: everything acknowledged`);
  }
});

test('a new group can start now, or replay from a moment', async (t) => {
  const s = await setup(t);
  await s.publish(3);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const since = new Date();
  await new Promise((resolve) => setTimeout(resolve, 20));
  await s.publish(2);
  t.deepEqual(ns(await s.drain('replay', 'r', { from: since })), ['0', '1']);
  t.deepEqual(await s.drain('live', 'l', { from: 'now' }), []);
  await s.publish(1);
  t.deepEqual(ns(await s.drain('live', 'l', { from: 'now' })), ['0']);
  // An existing group keeps its place unless rewound: then it reads again from the moment given.
  t.deepEqual(ns(await s.drain('replay', 'r', { from: 'beginning' })), ['0'], 'only what is new to it');
  t.deepEqual(ns(await s.drain('replay', 'r', { from: since, rewind: true })), ['0', '1', '0']);
  t.deepEqual(await s.drain('replay', 'r'), [], 'and carries on from there');
});

test('an entry that keeps failing goes to the dead-letter stream after maxDeliveries, and the rest flow on', async (t) => {
  const s = await setup(t);
  await s.publish(3);
  const options = {
    redis: s.redis,
    keys: s.keys,
    group: 'g',
    consumer: 'c',
    from: 'beginning' as const,
    follow: false,
    claimIdleMs: 0,
    maxDeliveries: 3,
  };
  const good: string[] = [];
  for (let run = 0; run < 6; run++) {
    try {
      for await (const entry of subscribe(options)) {
        const n = (entry.payload as { n: string }).n;
        if (n === '1') throw new Error('poison');
        good.push(n);
      }
    } catch {
      // the handler failed: the entry stays pending and comes back
    }
  }
  t.deepEqual(good.sort(), ['0', '2']);
  const dead = (await s.redis.xrange(s.keys.deadLetter, '-', '+')) as [string, string[]][];
  t.is(dead.length, 1);
  const fields = Object.fromEntries(
    (dead[0]?.[1] ?? []).flatMap((value, i, all) => (i % 2 === 0 ? [[value, all[i + 1]]] : [])),
  );
  t.like(fields, { dead_letter_group: 'g', dead_letter_reason: 'not acknowledged after 3 deliveries' });
  t.regex(fields.payload ?? '', /"n":"1"/);
  const pending = (await s.redis.xpending(s.keys.stream, 'g')) as [number, ...unknown[]];
  t.is(pending[0], 0);
});

test('a filter skips entries (acknowledged) without handing them to the loop', async (t) => {
  const s = await setup(t);
  await s.publish(6);
  const even = await s.drain('even', 'e', {
    filter: (entry) => Number((entry.payload as { n: string }).n) % 2 === 0,
  });
  t.deepEqual(ns(even), ['0', '2', '4']);
  t.deepEqual(await s.drain('even', 'e', { claimIdleMs: 0 }), []);
});

test('a consumer slower than claimIdleMs skips the entries another consumer has taken over meanwhile', async (t) => {
  const s = await setup(t);
  await s.publish(5);
  const options = {
    redis: s.redis,
    keys: s.keys,
    group: 'g',
    from: 'beginning' as const,
    follow: false,
    claimIdleMs: 200,
  };
  const slow: StreamEntry[] = [];
  let fast: StreamEntry[] = [];
  for await (const entry of subscribe({ ...options, consumer: 'slow' })) {
    slow.push(entry);
    if (slow.length === 1) {
      // Stuck on its first entry past claimIdleMs: another consumer takes over all it holds.
      await new Promise((resolve) => setTimeout(resolve, 300));
      fast = await s.drain('g', 'fast', { claimIdleMs: 200 });
    }
  }
  t.is(fast.length, 5, 'taken over, the one being handled included (at-least-once)');
  t.deepEqual(ns(slow), ['0'], 'the slow consumer handles none of the taken-over rest again');
});
