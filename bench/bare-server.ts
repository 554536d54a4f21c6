/**
 * The bare baselines of `npm run bench`, each a Koa app with one handler doing the least its job
 * needs, in its own process like ours. `BENCH_BARE` picks one:
 * - `enqueue`: `POST /v2/faxes` parses the JSON body and adds it to a raw BullMQ queue (`raw`);
 * - `webhook`: `POST /webhooks/telnyx` reads the raw body and answers 200;
 * - `webhook-verify`: the same after checking the Ed25519 signature (`PUBLIC_KEY`, base64);
 * - `webhook-stream`: the same, then `XADD`s the event (type, our id from `client_state`) to `raw:events`.
 * Env: PORT, REDIS_URL.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import parseBody from 'co-body';
import { Redis } from 'ioredis';
import Koa from 'koa';
import getRawBody from 'raw-body';
import { faxJobOptions } from '../shared/queue.ts';
import { telnyxPublicKey, verifyTelnyxSignature } from '../webhook/verify-signature.ts';

const mode = process.env.BENCH_BARE;
const app = new Koa();
const redis = new Redis(process.env.REDIS_URL as string, { maxRetriesPerRequest: 1 });
const queue = new Queue('raw', { connection: redis, prefix: 'raw' });
const key = mode?.startsWith('webhook-') ? telnyxPublicKey(process.env.PUBLIC_KEY as string) : undefined;

async function verified(ctx: Koa.Context): Promise<Buffer> {
  const rawBody = await getRawBody(ctx.req, { limit: '256kb', length: ctx.get('content-length') || null });
  if (key) {
    verifyTelnyxSignature(
      {
        rawBody,
        signature: ctx.get('telnyx-signature-ed25519') || undefined,
        timestamp: ctx.get('telnyx-timestamp') || undefined,
      },
      key,
      Date.now() / 1000,
    );
  }
  return rawBody;
}

app.use(async (ctx) => {
  if (ctx.method !== 'POST') return;
  if (mode === 'enqueue' && ctx.path === '/v2/faxes') {
    const body = (await parseBody.json(ctx)) as Record<string, unknown>;
    const id = randomUUID();
    // The id rides in client_state, as ours does, so a raw worker's webhooks can be matched to it.
    const state = Buffer.from(id).toString('base64');
    await queue.add('fax', { request: { ...body, client_state: state } }, faxJobOptions(id, 5));
    ctx.status = 202;
    ctx.body = { data: { id } };
    return;
  }
  if (mode?.startsWith('webhook') && ctx.path === '/webhooks/telnyx') {
    const rawBody = await verified(ctx);
    if (mode === 'webhook-stream') {
      const { data } = JSON.parse(rawBody.toString()) as {
        data: { event_type: string; payload: { client_state?: string } };
      };
      const id = Buffer.from(data.payload.client_state ?? '', 'base64').toString();
      await redis.xadd('raw:events', '*', 'event_type', data.event_type, 'id', id);
    }
    ctx.status = 200;
    ctx.body = { ok: true };
  }
});

const server = app.listen(Number(process.env.PORT), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void queue.close().finally(() => {
    redis.disconnect();
    process.exit(0);
  });
});
