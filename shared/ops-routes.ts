import type Koa from 'koa';
import { credentialsMatch } from './bearer.ts';
import type { FaxMetrics } from './metrics/fax-metrics.ts';
import type { FaxRedis } from './redis.ts';
import { withTimeout } from './with-timeout.ts';

export interface OpsDeps {
  readonly metrics: FaxMetrics;
  /** Resolves when the service can do its work; rejects with a message saying why not. */
  readonly ready: () => Promise<void>;
  /** When set, `/metrics` needs it: `Authorization: Bearer <token>`, or Basic with it as the password. */
  readonly apiToken?: string | undefined;
}

/** Why a service is not ready; its message is shown to the prober. */
export class NotReadyError extends Error {
  readonly code = 'NOT_READY';
}

/**
 * `GET /healthz` (the process answers: 200), `GET /readyz` (200, or 503 naming why not) and
 * `GET /metrics` (Prometheus text). Probes never need a token, so orchestrators can call them;
 * metrics carry scope and group names, so they sit behind the API token when one is set.
 */
export function opsRoutes(deps: OpsDeps): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    switch (ctx.path) {
      case '/healthz':
        ctx.body = { status: 'ok' };
        return;
      case '/readyz':
        try {
          await deps.ready();
          ctx.body = { status: 'ready' };
        } catch (error) {
          ctx.status = 503;
          ctx.body = {
            status: 'unavailable',
            reason: error instanceof NotReadyError ? error.message : 'not ready',
          };
        }
        return;
      case '/metrics':
        if (deps.apiToken !== undefined && !credentialsMatch(ctx.get('authorization'), deps.apiToken)) {
          ctx.status = 401;
          ctx.set('WWW-Authenticate', 'Bearer');
          ctx.body = { error: 'Send Authorization: Bearer <FAX_API_TOKEN>.' };
          return;
        }
        ctx.type = deps.metrics.registry.contentType;
        ctx.body = await deps.metrics.registry.metrics();
        return;
      default:
        return next();
    }
  };
}

/**
 * A service's ops routes: ready while `check` passes (it throws a {@link NotReadyError} saying why
 * not: shutting down, its worker stopped) and Redis answers on `redis`.
 */
export function serviceOps(
  metrics: FaxMetrics,
  apiToken: string | undefined,
  redis: FaxRedis,
  check: () => void,
): OpsDeps {
  return {
    metrics,
    apiToken,
    async ready() {
      check();
      await redisAnswers(redis);
    },
  };
}

/** A readiness check: Redis answers a PING within a second (on a connection that fails fast). */
export async function redisAnswers(redis: FaxRedis): Promise<void> {
  try {
    await withTimeout(redis.ping(), 1000, 'no PONG');
  } catch {
    throw new NotReadyError('Redis is unreachable');
  }
}
