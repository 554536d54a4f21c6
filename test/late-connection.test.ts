import http from 'node:http';
import type { Duplex } from 'node:stream';
import test from 'ava';
import { isFinal, queueFax, SEED_FAX, startPipeline, finalEntry } from './helpers/pipeline.ts';
import { until } from './helpers/until.ts';

// A file of its own: the slow machine below blocks this whole process's event loop.

test('connections that open too late after the claim send nothing, and the fax is given back without using its one try', async (t) => {
  const pipeline = await startPipeline(t, {
    // One try per attempt: a late connection counted as a failed POST would fail the fax.
    // The POST must be written within half the timeout of the claim: 200 ms here.
    env: { FAX_SUBMIT_ATTEMPTS: '1', TELNYX_TIMEOUT_MS: '400', FAX_RETRY_DELAY_SCALE: '0.2' },
    simulator: { stepMs: 5, callMs: 10 },
  });
  const simulatorPort = Number(new URL(pipeline.simulatorUrl).port);
  // A loaded machine: the event loop is stuck for 250 ms right after each connection to Telnyx
  // starts, so each is ready only after its write deadline — until the machine recovers.
  let slow = true;
  let late = 0;
  const create = http.Agent.prototype.createConnection;
  http.Agent.prototype.createConnection = function (
    this: http.Agent,
    ...args: Parameters<typeof create>
  ): Duplex {
    const socket = create.apply(this, args) as Duplex;
    if (Number((args[0] as { port?: number | string }).port) === simulatorPort && slow) {
      late++;
      const until = performance.now() + 250;
      while (performance.now() < until) {
        // stuck
      }
    }
    return socket;
  };
  t.teardown(() => {
    http.Agent.prototype.createConnection = create;
  });

  const id = await queueFax(pipeline, SEED_FAX);
  // After three late connections the fax gives its channel back (and its claim to send) while it
  // waits to try again, rather than holding them through the slowness.
  await until(
    async () => late >= 3 && (await pipeline.redis.hget(pipeline.keys.fax(id), 'slots')) === null,
    'the fax given back after three late connections',
    8000,
  );
  t.is(await pipeline.redis.hget(pipeline.keys.fax(id), 'status'), 'queued');
  t.is(await pipeline.redis.zcard(pipeline.keys.slots.held('account')), 0, 'its channel is free');
  slow = false;
  const entries = await pipeline.waitForFax(id, isFinal, 15_000);
  t.like(finalEntry(entries), { event_type: 'fax.delivered' });
  t.false(
    entries.some((entry) => entry.event_type === 'fax.failed'),
    'no POST was counted as failed',
  );
  const stats = pipeline.simulator.lifecycle.stats;
  t.is(stats.posts, 1, 'nothing of the late connections reached Telnyx');
  t.is(stats.accepted, 1);
  t.is(stats.lists, 0, 'nothing to ask Telnyx about: nothing was written');
});
