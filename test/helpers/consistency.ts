import type { ExecutionContext } from 'ava';
import { readFaxRecord } from '../../shared/fax-record.ts';
import { readLimits } from '../../shared/slots/limits.ts';
import type { TestPipeline } from './pipeline.ts';

/**
 * What every fault scenario must end with: each fax final (delivered, or failed as the policy says),
 * created at Telnyx at most once per attempt, no slot or lease left behind, and exactly one final
 * stream entry per fax, agreeing with the fax's record.
 */
export async function assertConsistent(
  t: ExecutionContext,
  pipeline: TestPipeline,
  faxIds: readonly string[],
  expected: 'delivered' | 'final' = 'delivered',
  timeoutMs = 40_000,
): Promise<void> {
  const statuses = await pipeline.waitForAll(faxIds, timeoutMs);
  if (expected === 'delivered') t.deepEqual(new Set(statuses), new Set(['delivered']), 'every fax delivered');
  const stats = pipeline.simulator.lifecycle.stats;
  const twice = Object.entries(stats.acceptedByAttempt).filter(([, count]) => count > 1);
  t.deepEqual(twice, [], 'no attempt of any fax created twice at Telnyx');

  // Slots go back in the same step as the final status; give lagging webhooks of ended calls a moment.
  const store = { redis: pipeline.redis, keys: pipeline.keys, slots: pipeline.runtime.slots };
  const deadline = Date.now() + 5000;
  let busy = (await readLimits(store)).scopes.filter((s) => s.inFlight > 0 || s.waiting > 0);
  while (busy.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    busy = (await readLimits(store)).scopes.filter((s) => s.inFlight > 0 || s.waiting > 0);
  }
  t.deepEqual(busy, [], 'no slot held or waited for');
  t.is(await pipeline.redis.zcard(pipeline.keys.slots.leases), 0, 'no lease left');

  const entries = await pipeline.entries();
  for (const faxId of faxIds) {
    const finals = entries.filter((entry) => entry.fax_id === faxId && entry.final);
    t.is(finals.length, 1, `one final entry for ${faxId}`);
    const record = await readFaxRecord(pipeline.redis, pipeline.keys, faxId);
    t.is(finals[0]?.status, record?.status, `the stream agrees with GET /v2/faxes/${faxId}`);
    if (record?.status === 'delivered') {
      // Every attempt of a delivered fax reached Telnyx exactly once: no extra fax under any attempt.
      const created = Object.entries(stats.acceptedByAttempt)
        .filter(([key]) => key.startsWith(`${faxId}#`))
        .reduce((sum, [, count]) => sum + count, 0);
      t.is(created, record.attempt, `${faxId}: one Telnyx fax per attempt`);
    }
    if (record?.status === 'delivered') {
      // Every attempt of a delivered fax reached Telnyx exactly once: no extra fax under any attempt.
      const created = Object.entries(stats.acceptedByAttempt)
        .filter(([key]) => key.startsWith(`${faxId}#`))
        .reduce((sum, [, count]) => sum + count, 0);
      t.is(created, record.attempt, `${faxId}: one Telnyx fax per attempt`);
    }
    t.is(record?.history.filter((item) => item.final).length, 1);
  }
}
