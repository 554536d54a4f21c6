import { Queue } from 'bullmq';
import { listen } from '../shared/http-server.ts';
import { FAX_QUEUE } from '../shared/keys.ts';
import type { FaxJobData } from '../shared/queue.ts';
import { connectRedis, waitReady } from '../shared/redis.ts';
import type { Runtime, Service } from '../shared/runtime.ts';
import { createHandoff } from '../shared/slots/handoff.ts';
import { publishDefaults } from '../shared/slots/limits.ts';
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
  const redis = connectRedis(runtime.redisUrl, { failFast: true, name: 'fax-webhook' });
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'));
  await waitReady(redis);
  const queue = new Queue<FaxJobData>(FAX_QUEUE, { connection: redis, prefix: runtime.keys.bullPrefix });
  queue.on('error', (error) => logger.warn({ err: error.message }, 'queue connection error'));
  const replaced = await publishDefaults({ redis, keys: runtime.keys, slots: runtime.slots });
  if (Object.keys(replaced).length > 0) {
    logger.warn(
      { replaced, now: runtime.slots.defaults },
      'this process changed the default channel limits every process uses (from its environment)',
    );
  }
  const handoff = createHandoff({
    queue,
    redis,
    keys: runtime.keys,
    logger,
    submitAttempts: env.FAX_SUBMIT_ATTEMPTS,
    backoffMs: 1000 * env.FAX_RETRY_DELAY_SCALE,
  });
  const app = createWebhookApp({
    handoff,
    sink: {
      redis,
      keys: runtime.keys,
      streamMaxLen: runtime.streamMaxLen,
      slots: runtime.slots,
      retryPolicy: runtime.config.retryPolicy,
    },
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
