import { listen } from '../shared/http-server.ts';
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
  const app = createWebhookApp({
    handoff,
    sink: eventSink(runtime, redis),
    logger,
    publicKey,
  });
  const server = await listen(app, port, env.FAX_BIND_HOST);
  logger.info({ url: `${server.url}/webhooks/telnyx` }, 'webhook service listening');
  return {
    name: 'webhook',
    url: server.url,
    async close() {
      await server.close();
      await queue.close();
      redis.disconnect();
    },
  } satisfies Service & { url: string };
}
