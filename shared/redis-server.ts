import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private `redis-server` child: for `npm start` without Redis, and for tests. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether something accepts TCP connections at host:port. */
export function answers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

/** The process id of the Redis answering at 127.0.0.1:port (`INFO server`), or undefined. */
function redisPidAt(port: number, timeoutMs = 1000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    const done = (pid: number | undefined) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once('error', () => done(undefined));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      const match = /process_id:(\d+)/.exec(reply);
      if (match) done(Number(match[1]));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('INFO server\r\n'));
  });
}

export interface StartRedisOptions {
  readonly port?: number;
  /** Keep an append-only file, fsynced on every write (nothing acknowledged is lost), for restart tests. */
  readonly appendOnly?: boolean;
  readonly dir?: string;
  /** Start as a Redis Cluster node (not yet part of a cluster), its cluster bus on `busPort`. */
  readonly cluster?: { readonly busPort: number };
}

/**
 * A private `redis-server` on `options.port`, or on a free port: should another process take that
 * port between its choice and the server's start (parallel tests), another free port is tried.
 */
export async function startRedisServer(options: StartRedisOptions = {}): Promise<RedisServer> {
  for (let tries = 1; ; tries++) {
    try {
      return await startRedisServerOnce(options);
    } catch (error) {
      if (!(error instanceof PortTakenError) || options.port !== undefined || tries >= 5) throw error;
    }
  }
}

class PortTakenError extends Error {}

async function startRedisServerOnce(options: StartRedisOptions): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'fax-redis-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      options.appendOnly ? 'yes' : 'no',
      '--appendfsync',
      'always',
      '--dir',
      dir,
      '--maxmemory-policy',
      'noeviction',
      // As docker-compose.yml: a fax record or job of a few hundred bytes stays a compact listpack
      // (about 40 % less memory per queued fax than the stock 64-byte limit, no more CPU).
      '--hash-max-listpack-value',
      '512',
      ...(options.cluster
        ? [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-port',
            String(options.cluster.busPort),
          ]
        : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? new Error('redis-server is not installed: apt-get install redis-server, or set REDIS_URL')
          : error,
      ),
    );
    child.once('exit', (code) => reject(new Error(`redis-server exited with code ${code}`)));
  });
  exited.catch(() => undefined);
  const deadline = Date.now() + 5000;
  const portTaken = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
    return new PortTakenError(`port ${port} is taken by another process`);
  };
  try {
    while (!(await Promise.race([answers('127.0.0.1', port, 200), exited]))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } catch (error) {
    // Ours could not listen: something else has the port.
    if (await answers('127.0.0.1', port, 200)) throw portTaken();
    throw error;
  }
  // Something answers: make sure it is this server, not another that took the port first (a server
  // too busy to say within the deadline counts as ours while our child runs).
  let pid = await redisPidAt(port);
  while (pid === undefined && Date.now() < deadline) pid = await redisPidAt(port);
  if (pid === undefined ? child.exitCode !== null || child.signalCode !== null : pid !== child.pid) {
    throw portTaken();
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
