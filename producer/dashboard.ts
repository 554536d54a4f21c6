import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Queue } from 'bullmq';
import type Koa from 'koa';
import { credentialsMatch } from '../shared/bearer.ts';

export const DASHBOARD_PATH = '/admin/queues';

export interface DashboardOptions {
  /** Where it is served (default {@link DASHBOARD_PATH}). */
  readonly basePath?: string;
  /**
   * When set, the dashboard needs it: `Authorization: Bearer <token>`, or HTTP Basic with any user
   * name and the token as the password (a browser asks for it).
   */
  readonly apiToken?: string | undefined;
}

/**
 * The BullMQ queues in bull-board's web dashboard, as a Koa middleware for the producer's app.
 * Read-only: removing, promoting or adding a job there would go around the pipeline's slot and
 * record scripts (a removed job could lose its fax), so bull-board refuses every change; cancel faxes
 * through the API or `fax cancel`.
 */
export function queueDashboard(queues: readonly Queue[], options: DashboardOptions = {}): Koa.Middleware {
  const basePath = options.basePath ?? DASHBOARD_PATH;
  const serverAdapter = new KoaAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Fax queues' } },
  });
  const board = serverAdapter.registerPlugin() as Koa.Middleware;
  const { apiToken } = options;
  return async (ctx, next) => {
    if (ctx.path !== basePath && !ctx.path.startsWith(`${basePath}/`)) return next();
    if (apiToken !== undefined && !credentialsMatch(ctx.get('authorization'), apiToken)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Basic realm="fax pipeline", charset="UTF-8"');
      ctx.body = {
        error: 'Sign in with the API token as the password (or send Authorization: Bearer <token>).',
      };
      return;
    }
    return board(ctx, next);
  };
}
