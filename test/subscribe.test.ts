import test, { type ExecutionContext } from 'ava';
import { applyEvent, type StreamEntry } from '../shared/events.ts';
import { subscribe } from '../shared/subscribe.ts';
import { inboundEvent, testSink } from './helpers/redis.ts';

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
