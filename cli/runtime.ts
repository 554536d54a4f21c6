import { type Config, ConfigError, loadConfig } from '../shared/config.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import type { RedisTarget } from '../shared/redis.ts';
import { answers, type RedisServer, startRedisServer } from '../shared/redis-server.ts';
import { createRuntime, type Runtime } from '../shared/runtime.ts';
import { startSimulatorService } from '../simulator/main.ts';

/** Reads the environment once; on a bad value prints every problem and exits. */
export function configOrExit(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`fax: ${error.message}\n`);
    process.exit(1);
  }
}

export interface Resolved {
  readonly runtime: Runtime;
  /** Closed last: the private Redis and the sandbox simulator, if this process started them. */
  readonly infrastructure: { readonly name: string; close(): Promise<void> }[];
}

/**
 * REDIS_CLUSTER_NODES or REDIS_URL, else a Redis already on 127.0.0.1:6379, else a private
 * redis-server child on that same port — so `fax send`, `fax events` and more `fax start` processes
 * find it there as they would a real one.
 */
export async function resolveRedis(
  config: Config,
  logger: Logger,
  localPort = 6379,
): Promise<{ target: RedisTarget; server?: RedisServer }> {
  if (config.redis !== undefined) return { target: config.redis };
  if (await answers('127.0.0.1', localPort)) return { target: `redis://127.0.0.1:${localPort}` };
  try {
    const server = await startRedisServer({ port: localPort });
    logger.warn(
      { url: server.url },
      `no REDIS_URL and nothing on 127.0.0.1:${localPort}: started a private redis-server there (data is lost on exit)`,
    );
    return { target: server.url, server };
  } catch {
    process.stderr.write(
      'fax: no Redis: set REDIS_URL=redis://host:6379, or install Redis (apt-get install redis-server / brew install redis)\n',
    );
    process.exit(1);
  }
}

/**
 * Resolves Redis and Telnyx for the services of this process. Without TELNYX_API_KEY the simulator
 * stands in for Telnyx (started here, or found already running on SIMULATOR_PORT).
 */
export async function resolveRuntime(config: Config, needsTelnyx: boolean): Promise<Resolved> {
  const { env } = config;
  const logger = createLogger(env.LOG_LEVEL, 'fax');
  const infrastructure: Resolved['infrastructure'] = [];
  const redis = await resolveRedis(config, logger);
  if (redis.server)
    infrastructure.push({ name: 'redis-server', close: () => redis.server?.stop() ?? Promise.resolve() });

  const localWebhook = `http://127.0.0.1:${env.WEBHOOK_PORT}/webhooks/telnyx`;
  let telnyx: Runtime['telnyx'] = {
    apiKey: env.TELNYX_API_KEY ?? '',
    baseUrl: env.TELNYX_BASE_URL,
    publicKey: env.TELNYX_PUBLIC_KEY,
  };
  if (config.sandbox && needsTelnyx) {
    logger.warn(
      '*** SANDBOX MODE: no TELNYX_API_KEY, so faxes go to the built-in Telnyx simulator and nothing is really sent. Set TELNYX_API_KEY to send real faxes. ***',
    );
    telnyx = await sandboxTelnyx(config, logger, localWebhook, infrastructure);
  }
  return {
    runtime: createRuntime(config, {
      redisTarget: redis.target,
      logger,
      telnyx,
      webhookUrl: env.FAX_WEBHOOK_URL ?? (config.sandbox ? localWebhook : undefined),
    }),
    infrastructure,
  };
}

async function sandboxTelnyx(
  config: Config,
  logger: Logger,
  webhookUrl: string,
  infrastructure: Resolved['infrastructure'],
): Promise<Runtime['telnyx']> {
  const { env } = config;
  const apiKey = 'sandbox';
  try {
    const started = await startSimulatorService(logger, env.SIMULATOR_PORT, '127.0.0.1', {
      apiKey,
      webhookUrl: env.FAX_WEBHOOK_URL ?? webhookUrl,
    });
    infrastructure.push(started);
    return { apiKey, baseUrl: `${started.url}/v2`, publicKey: started.simulator.publicKey };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    // Another process of this deployment runs the simulator: use it and its key.
    const url = `http://127.0.0.1:${env.SIMULATOR_PORT}`;
    const response = await fetch(`${url}/simulator/public-key`);
    const { public_key: publicKey } = (await response.json()) as { public_key: string };
    logger.info({ url }, 'using the Telnyx simulator already running');
    return { apiKey, baseUrl: `${url}/v2`, publicKey };
  }
}
