import { connectRedis, waitReady } from '../shared/redis.ts';
import type { Runtime, Service } from '../shared/runtime.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { createFaxWorker } from './fax-worker.ts';

/** Starts one worker process's BullMQ worker. */
export async function startWorkerService(runtime: Runtime): Promise<Service> {
  const { env } = runtime.config;
  const logger = runtime.logger.child({ service: 'worker' });
  const redis = connectRedis(runtime.redisUrl, { name: 'fax-worker' });
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'));
  await waitReady(redis);
  const telnyx = createTelnyxClient({
    apiKey: runtime.telnyx.apiKey,
    baseUrl: runtime.telnyx.baseUrl,
    timeoutMs: env.TELNYX_TIMEOUT_MS,
  });
  const worker = createFaxWorker(
    {
      redis,
      keys: runtime.keys,
      logger,
      telnyx,
      webhookUrl: runtime.webhookUrl,
      streamMaxLen: runtime.streamMaxLen,
    },
    { concurrency: env.FAX_WORKER_CONCURRENCY },
  );
  await worker.waitUntilReady();
  logger.info({ concurrency: env.FAX_WORKER_CONCURRENCY, telnyx: runtime.telnyx.baseUrl }, 'worker running');
  return {
    name: 'worker',
    async close() {
      await worker.close();
      redis.disconnect();
    },
  };
}
