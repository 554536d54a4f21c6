/**
 * The second baseline of `npm run bench`: a bare BullMQ worker, in its own process like ours, whose
 * processor only POSTs one fixed fax to the simulator with our Telnyx client — the least any worker
 * that sends faxes must do. Env: REDIS_URL, TELNYX_BASE_URL, CONCURRENCY.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createTelnyxClient } from '../shared/telnyx-client.ts';

const telnyx = createTelnyxClient({
  apiKey: 'bench',
  baseUrl: process.env.TELNYX_BASE_URL as string,
  timeoutMs: 30_000,
});
const fax = {
  connection_id: 'bench',
  from: '+19459457421',
  to: '+13129451000',
  media_url: 'https://example.com/a.pdf',
};
const connection = new Redis(process.env.REDIS_URL as string, { maxRetriesPerRequest: null });
const worker = new Worker(
  'rawpost',
  async () => {
    const outcome = await telnyx.submitFax(fax);
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
