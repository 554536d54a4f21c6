import test from 'ava';
import { applyEvent, type FaxEvent, newEventId, parseStreamEntry } from '../shared/events.ts';
import { readFaxRecord } from '../shared/fax-record.ts';
import { storeFax } from './helpers/records.ts';
import { inboundEvent, testSink } from './helpers/redis.ts';

const request = {
  connection_id: 'c1',
  to: '+13129457420',
  from: '+19459457421',
  media_url: 'https://e.com/a.pdf',
};

async function setup(t: import('ava').ExecutionContext) {
  const { redis, keys, sink } = await testSink(t);
  const faxId = newEventId();
  await storeFax(sink, faxId, request);
  const telnyx = (eventType: string, status: FaxEvent['status'], eventId = newEventId()): FaxEvent => ({
    eventId,
    eventType,
    faxId,
    status,
    attempt: 1,
    occurredAt: new Date().toISOString(),
    telnyxFaxId: 'tx-1',
    direction: 'outbound',
    payload: { fax_id: 'tx-1' },
    dedupe: true,
  });
  const entries = async () =>
    ((await redis.xrange(keys.stream, '-', '+')) as [string, string[]][]).map(([id, f]) =>
      parseStreamEntry(id, f),
    );
  return { redis, keys, sink, faxId, telnyx, entries };
}

test('status moves forward through the lifecycle and the final event is marked once', async (t) => {
  const { sink, faxId, telnyx, entries, redis, keys } = await setup(t);
  for (const [type, status] of [
    ['fax.queued', 'submitted'],
    ['fax.media.processed', 'media.processed'],
    ['fax.sending.started', 'sending'],
    ['fax.delivered', 'delivered'],
  ] as const) {
    await applyEvent(sink, telnyx(type, status));
  }
  const record = await readFaxRecord(redis, keys, faxId);
  t.is(record?.status, 'delivered');
  t.is(record?.telnyxFaxId, 'tx-1');
  const all = await entries();
  t.deepEqual(
    all.map((e) => e.status),
    ['queued', 'submitted', 'media.processed', 'sending', 'delivered'],
  );
  t.deepEqual(
    all.map((e) => e.final),
    [false, false, false, false, true],
  );
  t.is(record?.history.length, 5);
});

test('a late sending.started after delivered is published but never moves the status back', async (t) => {
  const { sink, faxId, telnyx, redis, keys, entries } = await setup(t);
  const delivered = await applyEvent(sink, telnyx('fax.delivered', 'delivered'));
  const late = await applyEvent(sink, telnyx('fax.sending.started', 'sending'));
  t.is(delivered.outcome, 'applied');
  t.true(delivered.final);
  t.is(late.outcome, 'published');
  t.is(late.status, 'delivered');
  t.false(late.final);
  t.is((await readFaxRecord(redis, keys, faxId))?.status, 'delivered');
  t.is((await entries()).filter((e) => e.final).length, 1);
});

test('a failed fax cannot be turned into delivered by a later webhook', async (t) => {
  const { sink, faxId, telnyx, redis, keys } = await setup(t);
  await applyEvent(sink, { ...telnyx('fax.failed', 'failed'), failureReason: 'destination_invalid' });
  const after = await applyEvent(sink, telnyx('fax.delivered', 'delivered'));
  t.is(after.outcome, 'published');
  const record = await readFaxRecord(redis, keys, faxId);
  t.is(record?.status, 'failed');
  t.is(record?.failureReason, 'destination_invalid');
});

test('a duplicate webhook (same event id) is dropped without a second stream entry', async (t) => {
  const { sink, telnyx, entries } = await setup(t);
  const event = telnyx('fax.delivered', 'delivered');
  t.is((await applyEvent(sink, event)).outcome, 'applied');
  t.is((await applyEvent(sink, event)).outcome, 'duplicate');
  t.is((await entries()).filter((e) => e.event_type === 'fax.delivered').length, 1);
});

test('the fax holds an in-flight place from acceptance until its terminal event', async (t) => {
  const { sink, faxId, telnyx, redis, keys } = await setup(t);
  await applyEvent(sink, telnyx('fax.queued', 'submitted'));
  t.not(await redis.zscore(keys.inFlight, faxId), null);
  await applyEvent(sink, telnyx('fax.delivered', 'delivered'));
  t.is(await redis.zscore(keys.inFlight, faxId), null);
  // A late non-terminal event does not put it back.
  await applyEvent(sink, telnyx('fax.sending.started', 'sending'));
  t.is(await redis.zscore(keys.inFlight, faxId), null);
});

test('an event for an unknown fax is published with no fax id and creates nothing', async (t) => {
  const { sink, keys, redis, entries } = await setup(t);
  const result = await applyEvent(sink, inboundEvent({ fax_id: 'in-1' }));
  t.is(result.outcome, 'published');
  const last = (await entries()).at(-1);
  t.is(last?.fax_id, '');
  t.is(last?.direction, 'inbound');
  t.is(await redis.exists(keys.fax('-')), 0);
});
