import type { RunningServer } from '../shared/http-server.ts';
import { NotReadyError, serviceOps } from '../shared/ops-routes.ts';
import { connectRedis, waitReady } from '../shared/redis.ts';
import { eventSink, type Runtime, type Service } from '../shared/runtime.ts';
import { startHandoff } from '../shared/slots/handoff.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { createFaxWorker } from './fax-worker.ts';
import { startHealthServer } from './health-server.ts';
import { createRateLimiter } from './rate-limiter.ts';
import { createInboundWorker } from './save-inbound.ts';
import { SLOT_KEEPER_DEFAULTS, type SlotKeeperOptions, startSlotKeeper } from './slot-keeper.ts';

export interface WorkerServiceOptions {
  readonly keeper?: SlotKeeperOptions;
}

/**
 * Starts one worker process's BullMQ worker and slot keeper, and with FAX_WORKER_HEALTH_PORT set its
 * health and metrics server.
 */
export async function startWorkerService(
  runtime: Runtime,
  options: WorkerServiceOptions = {},
): Promise<Service & { readonly healthUrl: string | undefined }> {
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
  // Aborted on shutdown: waits for a turn under the rate limit or for a 429 pause end at once.
  const stop = new AbortController();
  const limiter = createRateLimiter(
    redis,
    runtime.keys,
    env.TELNYX_RATE_LIMIT === 'none' ? undefined : env.TELNYX_RATE_LIMIT,
    stop.signal,
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
    stopping: stop.signal,
    metrics: runtime.metrics,
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
  const health = await startHealth(runtime, () => {
    if (stop.signal.aborted) throw new NotReadyError('shutting down');
    if (!worker.isRunning()) throw new NotReadyError('worker not running');
  });
  logger.info(
    {
      concurrency: env.FAX_WORKER_CONCURRENCY,
      telnyx: runtime.telnyx.baseUrl,
      limits: runtime.slots.defaults,
      rateLimit: env.TELNYX_RATE_LIMIT,
      inboundDir: env.FAX_INBOUND_DIR,
      health: health?.server.url,
    },
    'worker running',
  );
  return {
    name: 'worker',
    healthUrl: health?.server.url,
    async close() {
      // No new jobs; jobs waiting for their turn or out a 429 hand their faxes back; POSTs on their
      // way are waited for and recorded. Liveness keeps answering until the end, readiness says no.
      stop.abort();
      await Promise.all([keeper.close(), worker.close(), inbound?.close()]);
      await queue.close();
      await telnyx.close();
      await health?.close();
      redis.disconnect();
    },
  };
}

/** The health and metrics server on FAX_WORKER_HEALTH_PORT, on a connection of its own that fails fast. */
async function startHealth(
  runtime: Runtime,
  /** Throws a {@link NotReadyError} when the worker cannot take jobs. */
  working: () => void,
): Promise<{ server: RunningServer; close(): Promise<void> } | undefined> {
  const { env } = runtime.config;
  if (env.FAX_WORKER_HEALTH_PORT === undefined) return undefined;
  const probe = connectRedis(runtime.redisTarget, { failFast: true, name: 'fax-worker-probe' });
  probe.on('error', () => undefined); // the worker's own connection logs Redis errors
  await waitReady(probe);
  const watched = runtime.metrics.watchRedisState({ redis: probe, keys: runtime.keys, slots: runtime.slots });
  const server = await startHealthServer(
    serviceOps(runtime.metrics, env.FAX_API_TOKEN, probe, working),
    env.FAX_WORKER_HEALTH_PORT,
    env.FAX_BIND_HOST,
  );
  return {
    server,
    async close() {
      await server.close();
      await watched.close();
      probe.disconnect();
    },
  };
}
