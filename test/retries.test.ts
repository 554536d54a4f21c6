import test from 'ava';
import { isFinal, queueFax, SEED_FAX, startPipeline } from './helpers/pipeline.ts';

const TO = '+13129457455';

test('a busy line is tried again as the policy says, each retry published, and the fax delivered once', async (t) => {
  const pipeline = await startPipeline(t, {
    env: { FAX_RETRY_DELAY_SCALE: '0.001' },
    simulator: { stepMs: 5, callMs: 10, failFirst: { [TO]: { reason: 'user_busy', times: 2 } } },
  });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: TO });
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  const retries = entries.filter((entry) => entry.event_type === 'fax.failed');
  t.is(retries.length, 2);
  for (const [i, entry] of retries.entries()) {
    t.like(entry, { status: 'queued', final: false, attempt: i + 1, failure_reason: 'user_busy' });
    t.truthy(
      entry.next_attempt_at && Date.parse(entry.next_attempt_at) > Date.parse(entry.occurred_at) - 1000,
    );
  }
  t.is(entries.filter((entry) => entry.final).length, 1);
  t.like(entries.at(-1), { event_type: 'fax.delivered', status: 'delivered', attempt: 3, final: true });
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 3, 'three attempts, three POSTs');

  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${id}`)).json()) as {
    data: { status: string; attempts: number; events: { next_attempt_at?: string }[] };
  };
  t.like(view.data, { status: 'delivered', attempts: 3 });
  t.is(view.data.events.filter((event) => event.next_attempt_at).length, 2, 'the history shows both retries');
});

test('a fax that keeps failing ends once the policy has no attempts left, with why', async (t) => {
  const pipeline = await startPipeline(t, {
    env: {
      FAX_RETRY_POLICY: '{"reasons": {"user_busy": {"retry": true, "delays": [0.05], "maxAttempts": 2}}}',
    },
    simulator: { stepMs: 5, callMs: 10, failures: { [TO]: 'user_busy' } },
  });
  const id = await queueFax(pipeline, { ...SEED_FAX, to: TO });
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  t.like(entries.at(-1), {
    event_type: 'fax.failed',
    status: 'failed',
    final: true,
    attempt: 2,
    failure_reason: 'user_busy',
    detail: 'user_busy: no attempts left (2 of 2 made)',
  });
  t.is(entries.filter((entry) => entry.final).length, 1);
  t.is(pipeline.simulator.lifecycle.stats.postsByFax[id], 2);
});
