import { connectRedis, waitReady } from '../shared/redis.ts';
import { eventSink, type Runtime, type Service } from '../shared/runtime.ts';
import { startHandoff } from '../shared/slots/handoff.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { createFaxWorker } from './fax-worker.ts';
import { createRateLimiter } from './rate-limiter.ts';
import { createInboundWorker } from './save-inbound.ts';
import { SLOT_KEEPER_DEFAULTS, type SlotKeeperOptions, startSlotKeeper } from './slot-keeper.ts';

export interface WorkerServiceOptions {
  readonly keeper?: SlotKeeperOptions;
}

/** Starts one worker process's BullMQ worker and slot keeper. */
export async function startWorkerService(
  runtime: Runtime,
  options: WorkerServiceOptions = {},
): Promise<Service> {
  const { env } = runtime.config;
  const logger = runtime.logger.child({ service: 'worker' });
  const redis = connectRedis(runtime.redisTarget, { name: 'fax-worker' });
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'));
  await waitReady(redis);
  const telnyx = createTelnyxClient({
    apiKey: runtime.telnyx.apiKey,
    baseUrl: runtime.telnyx.baseUrl,
    timeoutMs: env.TELNYX_TIMEOUT_MS,
  });
  const { queue, handoff } = await startHandoff(runtime, redis, logger);
  const limiter = createRateLimiter(
    redis,
    runtime.keys,
    env.TELNYX_RATE_LIMIT === 'none' ? undefined : env.TELNYX_RATE_LIMIT,
  );
  const deps = {
    ...eventSink(runtime, redis),
    logger,
    telnyx,
    limiter,
    handoff,
    queue,
    webhookUrl: runtime.webhookUrl,
    submitAttempts: env.FAX_SUBMIT_ATTEMPTS,
    // A POST that timed out has surely finished at Telnyx after twice our timeout.
    settleMs: 2 * env.TELNYX_TIMEOUT_MS,
    backoffMs: 1000 * env.FAX_RETRY_DELAY_SCALE,
    streamMaxAgeMs:
      env.FAX_STREAM_MAX_AGE_SECONDS === undefined ? undefined : env.FAX_STREAM_MAX_AGE_SECONDS * 1000,
  };
  const worker = createFaxWorker(deps, {
    concurrency: env.FAX_WORKER_CONCURRENCY,
    lockMs: env.FAX_WORKER_LOCK_SECONDS * 1000,
  });
  const keeper = startSlotKeeper(deps, options.keeper ?? SLOT_KEEPER_DEFAULTS);
  const inbound = env.FAX_INBOUND_DIR
    ? await createInboundWorker({ ...deps, dir: env.FAX_INBOUND_DIR }, { concurrency: 4 })
    : undefined;
  await worker.waitUntilReady();
  logger.info(
    {
      concurrency: env.FAX_WORKER_CONCURRENCY,
      telnyx: runtime.telnyx.baseUrl,
      limits: runtime.slots.defaults,
      rateLimit: env.TELNYX_RATE_LIMIT,
      inboundDir: env.FAX_INBOUND_DIR,
    },
    'worker running',
  );
  return {
    name: 'worker',
    async close() {
      await keeper.close();
      await worker.close();
      await inbound?.close();
      await queue.close();
      await telnyx.close();
      redis.disconnect();
    },
  };
}
