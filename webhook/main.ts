import { Queue } from 'bullmq';
import type { InboundDocumentJob } from '../shared/inbound.ts';
import { INBOUND_QUEUE } from '../shared/keys.ts';
import { listen } from '../shared/http-server.ts';
import { NotReadyError, serviceOps } from '../shared/ops-routes.ts';
import { connectRedis, waitReady } from '../shared/redis.ts';
import { eventSink, type Runtime, type Service } from '../shared/runtime.ts';
import { startHandoff } from '../shared/slots/handoff.ts';
import { createWebhookApp } from './http-app.ts';
import { telnyxPublicKey } from './verify-signature.ts';

/** Starts the webhook receiver on WEBHOOK_PORT. */
export async function startWebhookService(runtime: Runtime, port = runtime.config.env.WEBHOOK_PORT) {
  const { env } = runtime.config;
  const logger = runtime.logger.child({ service: 'webhook' });
  if (runtime.telnyx.publicKey === undefined) {
    throw new Error(
      'TELNYX_PUBLIC_KEY is required to verify webhooks (the base64 key from the Telnyx portal)',
    );
  }
  const publicKey = telnyxPublicKey(runtime.telnyx.publicKey);
  const redis = connectRedis(runtime.redisTarget, { failFast: true, name: 'fax-webhook' });
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'));
  await waitReady(redis);
  const { queue, handoff } = await startHandoff(runtime, redis, logger);
  const inboundQueue = env.FAX_INBOUND_DIR
    ? new Queue<InboundDocumentJob>(INBOUND_QUEUE, { connection: redis, prefix: runtime.keys.bullPrefix })
    : undefined;
  inboundQueue?.on('error', (error) => logger.warn({ err: error }, 'inbound queue connection error'));
  let stopping = false;
  const app = createWebhookApp({
    handoff,
    sink: eventSink(runtime, redis),
    logger,
    publicKey,
    ...(inboundQueue
      ? { inbound: { queue: inboundQueue, backoffMs: 5000 * env.FAX_RETRY_DELAY_SCALE } }
      : {}),
    ops: serviceOps(runtime.metrics, env.FAX_API_TOKEN, redis, () => {
      if (stopping) throw new NotReadyError('shutting down');
    }),
  });
  const watched = runtime.metrics.watchRedisState({ redis, keys: runtime.keys, slots: runtime.slots });
  const server = await listen(app, port, env.FAX_BIND_HOST);
  logger.info({ url: `${server.url}/webhooks/telnyx` }, 'webhook service listening');
  return {
    name: 'webhook',
    url: server.url,
    async close() {
      // New connections are refused (Telnyx retries them elsewhere or later); webhooks already
      // received are stored and answered before Redis is let go.
      stopping = true;
      await server.close();
      await watched.close();
      await inboundQueue?.close();
      await queue.close();
      redis.disconnect();
    },
  } satisfies Service & { url: string };
}
