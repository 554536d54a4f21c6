import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import type Koa from 'koa';

export interface RunningServer {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  /**
   * Stops accepting connections and drains: requests already received are answered (with
   * `Connection: close`, so keep-alive clients go elsewhere), idle connections are closed; resolves
   * once every connection has ended.
   */
  close(): Promise<void>;
}

/** Listens on host:port (0 = any free port) and resolves once it accepts connections. */
export async function listen(app: Koa, port: number, host: string): Promise<RunningServer> {
  const server = app.listen(port, host);
  let draining = false;
  const answering = new Set<ServerResponse>();
  server.on('request', (_request, response: ServerResponse) => {
    if (draining) response.setHeader('connection', 'close');
    answering.add(response);
    response.once('close', () => answering.delete(response));
  });
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]) => Promise.reject(error)),
  ]);
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    server,
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        draining = true;
        // Node keeps a keep-alive connection open after close() until it idles out: end each after
        // the answer it is giving.
        for (const response of answering) {
          if (!response.headersSent) response.setHeader('connection', 'close');
        }
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
