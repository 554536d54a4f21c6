import { listen } from '../shared/http-server.ts';
import { connectRedis, waitReady } from '../shared/redis.ts';
import type { Runtime, Service } from '../shared/runtime.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { createProducerApp } from './http-app.ts';
import { createProducer } from './producer.ts';

/** Starts the producer HTTP API on PRODUCER_PORT. */
export async function startProducerService(runtime: Runtime, port = runtime.config.env.PRODUCER_PORT) {
  const { env } = runtime.config;
  const logger = runtime.logger.child({ service: 'producer' });
  const redis = connectRedis(runtime.redisTarget, { failFast: true, name: 'fax-producer' });
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'));
  await waitReady(redis);
  const telnyx = createTelnyxClient({
    apiKey: runtime.telnyx.apiKey,
    baseUrl: runtime.telnyx.baseUrl,
    timeoutMs: env.TELNYX_TIMEOUT_MS,
  });
  const producer = createProducer({
    redis,
    keys: runtime.keys,
    logger,
    defaults: { connectionId: env.TELNYX_CONNECTION_ID, from: env.FAX_FROM },
    submitAttempts: env.FAX_SUBMIT_ATTEMPTS,
    streamMaxLen: runtime.streamMaxLen,
    slots: runtime.slots,
    retryPolicy: runtime.config.retryPolicy,
    idempotencySeconds: env.FAX_IDEMPOTENCY_SECONDS,
    mediaUrlHosts: env.FAX_MEDIA_URL_HOSTS,
    telnyx,
  });
  const app = createProducerApp({ producer, logger, apiToken: env.FAX_API_TOKEN });
  const server = await listen(app, port, env.FAX_BIND_HOST);
  logger.info({ url: server.url, auth: env.FAX_API_TOKEN !== undefined }, 'producer API listening');
  return {
    name: 'producer',
    url: server.url,
    async close() {
      await server.close();
      await producer.close();
      await telnyx.close();
      redis.disconnect();
    },
  } satisfies Service & { url: string };
}
