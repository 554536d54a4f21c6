import { listen } from '../shared/http-server.ts';
import { NotReadyError, serviceOps } from '../shared/ops-routes.ts';
import { connectRedis, waitReady } from '../shared/redis.ts';
import type { Runtime, Service } from '../shared/runtime.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { DASHBOARD_PATH, queueDashboard } from './dashboard.ts';
import { createProducerApp } from './http-app.ts';
import { createProducer } from './producer.ts';

/** Starts the producer HTTP API on PRODUCER_PORT, with the probes, metrics and the queue dashboard. */
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
    observer: runtime.metrics,
  });
  // The dashboard's and the metrics' view of the queues.
  const watched = runtime.metrics.watchRedisState({ redis, keys: runtime.keys, slots: runtime.slots });
  let stopping = false;
  const app = createProducerApp({
    producer,
    logger,
    apiToken: env.FAX_API_TOKEN,
    ops: serviceOps(runtime.metrics, env.FAX_API_TOKEN, redis, () => {
      if (stopping) throw new NotReadyError('shutting down');
    }),
    dashboard: queueDashboard(watched.queues, { apiToken: env.FAX_API_TOKEN }),
  });
  const server = await listen(app, port, env.FAX_BIND_HOST);
  logger.info(
    { url: server.url, dashboard: `${server.url}${DASHBOARD_PATH}`, auth: env.FAX_API_TOKEN !== undefined },
    'producer API listening',
  );
  return {
    name: 'producer',
    url: server.url,
    async close() {
      // Requests already received are answered (a fax in the middle of being stored is stored).
      stopping = true;
      await server.close();
      await watched.close();
      await producer.close();
      await telnyx.close();
      redis.disconnect();
    },
  } satisfies Service & { url: string };
}
