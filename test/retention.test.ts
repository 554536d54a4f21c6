import test from 'ava';
import { applyEvent, type StreamEntry } from '../shared/events.ts';
import { createLogger } from '../shared/logger.ts';
import { subscribe } from '../shared/subscribe.ts';
import { enforceRetention } from '../worker/stream-retention.ts';
import { inboundEvent, testSink } from './helpers/redis.ts';

test('the stream is trimmed by age, and a group that had not read what was trimmed is named', async (t) => {
  const { redis, keys, sink } = await testSink(t);
  const publish = async (n: number) => {
    for (let i = 0; i < n; i++) await applyEvent(sink, inboundEvent({ n: String(i) }));
  };
  await publish(5);
  // "fast" reads everything; "slow" exists but reads nothing.
  const read: StreamEntry[] = [];
  for await (const entry of subscribe({
    redis,
    keys,
    group: 'fast',
    consumer: 'f',
    from: 'beginning',
    follow: false,
  })) {
    read.push(entry);
  }
  t.is(read.length, 5);
  await redis.xgroup('CREATE', keys.stream, 'slow', '0');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await publish(2);

  const behind = await enforceRetention({ redis, keys, logger: createLogger('silent', 't'), maxAgeMs: 1000 });
  t.is(await redis.xlen(keys.stream), 2, 'the 5 older entries were trimmed');
  t.deepEqual(behind, ['slow']);

  // A group created from the beginning after the trim never had those entries: it is not named.
  const late: StreamEntry[] = [];
  for await (const entry of subscribe({
    redis,
    keys,
    group: 'late',
    consumer: 'l',
    from: 'beginning',
    follow: false,
  })) {
    late.push(entry);
  }
  t.is(late.length, 2);
  t.deepEqual(await enforceRetention({ redis, keys, logger: createLogger('silent', 't'), maxAgeMs: 1000 }), [
    'slow',
  ]);
});
