import test from 'ava';
import { decodeClientState } from '../shared/client-state.ts';
import { queueFax, SEED_FAX, startPipeline } from './helpers/pipeline.ts';

test('with one channel, high-priority faxes are sent before bulk ones queued earlier', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', TELNYX_RATE_LIMIT: 'none' },
    simulator: { stepMs: 5, callMs: 400, accountChannelLimit: 1 },
  });
  const to = (i: number) => `+1312945${7200 + i}`;
  const first = await queueFax(pipeline, { ...SEED_FAX, to: to(0) });
  const bulk: string[] = [];
  for (let i = 1; i <= 4; i++)
    bulk.push(await queueFax(pipeline, { ...SEED_FAX, to: to(i), priority: 'bulk' }));
  const high = [
    await queueFax(pipeline, { ...SEED_FAX, to: to(5), priority: 'high' }),
    await queueFax(pipeline, { ...SEED_FAX, to: to(6), priority: 'high' }),
  ];
  t.deepEqual(new Set(await pipeline.waitForAll([first, ...bulk, ...high], 20_000)), new Set(['delivered']));
  const order = pipeline.simulator.lifecycle.requests.map(
    (body) => decodeClientState((body as { client_state: string }).client_state)?.faxId,
  );
  t.deepEqual(order.slice(0, 3), [first, ...high], 'the urgent ones right after the call on the line');
  t.deepEqual(new Set(order.slice(3)), new Set(bulk));
  t.false(
    pipeline.simulator.lifecycle.requests.some((body) => 'priority' in (body as object)),
    'priority is ours: not sent to Telnyx',
  );
});
