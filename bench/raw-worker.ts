/**
 * The raw BullMQ worker baselines of `npm run bench`, each in its own process like ours. `MODE`:
 * - `post`: the processor only POSTs the job's fax (`data.request`, else one fixed fax) to the
 *   simulator with our Telnyx client — the least any worker that sends faxes must do;
 * - `park`: the processor moves every job to the delayed set an hour ahead, as ours parks a fax
 *   waiting for a channel — the least any worker holding a backlog must do;
 * - `noop`: the processor does nothing; once it has done `JOBS` jobs it writes its rate and CPU per
 *   job as JSON to `OUT_FILE`, both from its `WARMUP`th job on (the ones before warm the JIT up).
 * Env: REDIS_URL, TELNYX_BASE_URL, QUEUE, CONCURRENCY, WEBHOOK_URL (sent with every POST, if set).
 */
import { writeFileSync } from 'node:fs';
import { DelayedError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createTelnyxClient } from '../shared/telnyx-client.ts';

const telnyx = createTelnyxClient({
  apiKey: 'bench',
  baseUrl: process.env.TELNYX_BASE_URL as string,
  timeoutMs: 30_000,
});
const fixedFax = {
  connection_id: 'bench',
  from: '+19459457421',
  to: '+13129451000',
  media_url: 'https://example.com/a.pdf',
};
const webhookUrl = process.env.WEBHOOK_URL;
const noop = {
  jobs: Number(process.env.JOBS ?? 0),
  warmup: Number(process.env.WARMUP ?? 0),
  done: 0,
  first: 0,
  cpu: process.cpuUsage(),
};
function noteNoop() {
  if (noop.done++ === noop.warmup) {
    noop.first = performance.now();
    noop.cpu = process.cpuUsage();
  } else if (noop.done === noop.jobs) {
    const cpu = process.cpuUsage(noop.cpu);
    const result = {
      perSecond: ((noop.done - noop.warmup - 1) / (performance.now() - noop.first)) * 1000,
      cpuMsPerJob: (cpu.user + cpu.system) / 1000 / (noop.done - noop.warmup - 1),
    };
    writeFileSync(process.env.OUT_FILE as string, JSON.stringify(result));
  }
}
const connection = new Redis(process.env.REDIS_URL as string, { maxRetriesPerRequest: null });
const worker = new Worker<{ request?: typeof fixedFax }>(
  process.env.QUEUE as string,
  async (job, token) => {
    if (process.env.MODE === 'noop') return noteNoop();
    if (process.env.MODE === 'park') {
      await job.moveToDelayed(Date.now() + 3_600_000, token);
      throw new DelayedError();
    }
    const outcome = await telnyx.submitFax({
      ...(job.data.request ?? fixedFax),
      ...(webhookUrl ? { webhook_url: webhookUrl } : {}),
    });
    if (outcome.kind !== 'accepted') throw new Error(`POST failed: ${outcome.kind}`);
  },
  { connection, prefix: 'raw', concurrency: Number(process.env.CONCURRENCY ?? 16) },
);
process.once('SIGTERM', async () => {
  await worker.close();
  await telnyx.close();
  connection.disconnect();
  process.exit(0);
});
