import test, { type ExecutionContext } from 'ava';
import { applyEvent, newEventId } from '../shared/events.ts';
import { createLogger } from '../shared/logger.ts';
import { faxJobId } from '../shared/queue.ts';
import { startHandoff } from '../shared/slots/handoff.ts';
import { acquireSlots, stampPost } from '../shared/slots/slots.ts';
import { eventSink } from '../shared/runtime.ts';
import { OWN_EVENTS } from '../shared/status.ts';
import { createTelnyxClient, type TelnyxClient } from '../shared/telnyx-client.ts';
import { createRateLimiter } from '../worker/rate-limiter.ts';
import { type ReconcileDeps, reconcileLease } from '../worker/reconcile.ts';
import { startSlotKeeper } from '../worker/slot-keeper.ts';
import { queueFax, SEED_FAX, startPipeline, type TestPipeline } from './helpers/pipeline.ts';
import { until } from './helpers/until.ts';

/**
 * The slot keeper's reconciliation of a lease that ran out while no job would POST its fax, driven
 * step by step against a real Redis and the simulator.
 */
async function reconcileWorld(t: ExecutionContext) {
  const pipeline = await startPipeline(t, {
    worker: false,
    env: { FAX_ACCOUNT_CHANNEL_LIMIT: '1', TELNYX_RATE_LIMIT: 'none' },
  });
  const logger = createLogger('silent', 'test');
  const { queue, handoff } = await startHandoff(pipeline.runtime, pipeline.redis, logger);
  t.teardown(() => queue.close());
  const telnyx = createTelnyxClient({
    apiKey: 'test-key',
    baseUrl: `${pipeline.simulatorUrl}/v2`,
    timeoutMs: 2000,
  });
  t.teardown(() => telnyx.close());
  const deps: ReconcileDeps = {
    ...eventSink(pipeline.runtime, pipeline.redis),
    telnyx,
    limiter: createRateLimiter(pipeline.redis, pipeline.keys, undefined),
    handoff,
    queue,
    logger,
    settleMs: 0,
  };
  /** A queued fax claimed by run `run` whose job is gone, its lease run out: the keeper's to look at. */
  async function orphaned(to: string, run: string): Promise<string> {
    const faxId = await queueFax(pipeline, { ...SEED_FAX, to });
    await (await queue.getJob(faxJobId(faxId, 1)))?.remove();
    const claim = await acquireSlots(deps, { faxId, jobId: faxId, attempt: 1, rateIntervalMs: 0, run });
    t.is(claim.kind, 'held');
    await pipeline.redis.zadd(pipeline.keys.slots.leases, 0, faxId);
    return faxId;
  }
  return { pipeline, deps, queue, orphaned };
}

const field = (pipeline: TestPipeline, faxId: string, name: string) =>
  pipeline.redis.hget(pipeline.keys.fax(faxId), name);

test('reconciliation frees nothing a run claimed after it looked: a revived job that sent the fax meanwhile keeps its channel', async (t) => {
  const { pipeline, deps, orphaned } = await reconcileWorld(t);
  const a = await orphaned('+13125550101', 'run-0');
  // Telnyx is asked (did the dead run create the fax?) and is slow to answer.
  let asked = 0;
  let answer: () => void = () => undefined;
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  const slowTelnyx: TelnyxClient = {
    ...deps.telnyx,
    async listFaxes(query) {
      asked++;
      const list = await deps.telnyx.listFaxes(query);
      await answered;
      return list;
    },
  };
  const reconciling = reconcileLease({ ...deps, telnyx: slowTelnyx }, a);
  await until(() => asked > 0, 'Telnyx asked');
  // Meanwhile the fax's job runs again (revived elsewhere): it takes the claim over, POSTs, records
  // the 202.
  t.like(await acquireSlots(deps, { faxId: a, jobId: a, attempt: 1, rateIntervalMs: 0, run: 'run-1' }), {
    kind: 'held',
  });
  t.is(await stampPost(deps, a, 1, 'run-1'), 'post');
  await applyEvent(deps, {
    eventId: newEventId(),
    eventType: OWN_EVENTS.submitted,
    faxId: a,
    attempt: 1,
    status: 'submitted',
    telnyxFaxId: 'tx-a',
    direction: 'outbound',
    occurredAt: new Date().toISOString(),
    payload: {},
    dedupe: false,
  });
  answer();
  t.is(await reconciling, 'moved-on');
  t.is(await field(pipeline, a, 'status'), 'submitted');
  t.truthy(await field(pipeline, a, 'slots'), 'the call in flight keeps its channel');
  t.not(await pipeline.redis.zscore(pipeline.keys.slots.leases, a), null, 'and its lease');
  // The account has one channel, and it is taken.
  const b = await queueFax(pipeline, { ...SEED_FAX, to: '+13125550102' });
  t.like(await acquireSlots(deps, { faxId: b, jobId: b, attempt: 1, rateIntervalMs: 0, run: 'run-b' }), {
    kind: 'parked',
  });
});

test('a keeper that dies between freeing a fax and queueing its job again loses nothing: the next keeper round queues it', async (t) => {
  const { pipeline, deps, queue, orphaned } = await reconcileWorld(t);
  const a = await orphaned('+13125550101', 'run-0');
  // The process dies right after the release, before the job is queued again.
  const dying: ReconcileDeps = {
    ...deps,
    handoff: {
      ...deps.handoff,
      requeue: async () => {
        throw new Error('process died');
      },
    },
  };
  await t.throwsAsync(reconcileLease(dying, a), { message: 'process died' });
  t.is(await field(pipeline, a, 'slots'), null, 'its channel was freed');
  t.is(await queue.getJobState(faxJobId(a, 1)), 'unknown', 'and no job sends it');

  const keeper = startSlotKeeper(deps, { intervalMs: 20, batch: 50, sweepMs: 20, failedScanMs: 60_000 });
  t.teardown(() => keeper.close());
  await until(
    async () => (await queue.getJobState(faxJobId(a, 1))) !== 'unknown',
    'the fax queued again by the keeper',
    8000,
  );
  t.is(await field(pipeline, a, 'status'), 'queued');
});
