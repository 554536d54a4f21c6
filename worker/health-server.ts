import Koa from 'koa';
import { listen, type RunningServer } from '../shared/http-server.ts';
import { type OpsDeps, opsRoutes } from '../shared/ops-routes.ts';

/** A worker has no HTTP API: this small server gives it `/healthz`, `/readyz` and `/metrics`. */
export async function startHealthServer(deps: OpsDeps, port: number, host: string): Promise<RunningServer> {
  const app = new Koa();
  app.use(opsRoutes(deps));
  app.use((ctx) => {
    ctx.status = 404;
    ctx.body = { error: 'GET /healthz, /readyz or /metrics' };
  });
  return listen(app, port, host);
}
