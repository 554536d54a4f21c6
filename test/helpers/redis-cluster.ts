import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { parseClusterNodes, type RedisClusterTarget } from '../../shared/redis-cluster.ts';
import { freePort, type RedisServer, startRedisServer } from '../../shared/redis-server.ts';

const run = promisify(execFile);

export interface TestCluster {
  /** What REDIS_CLUSTER_NODES would say: every master as host:port. */
  readonly nodes: string;
  readonly target: RedisClusterTarget;
  /** The nodes running now (masters and replicas). */
  readonly servers: readonly RedisServer[];
  /** The port of the master serving a key's slot. */
  masterOf(key: string): Promise<number>;
  /** Stops one node (its data is lost: no persistence). */
  stopNode(port: number): Promise<void>;
  /** Starts a stopped node again, empty but with its cluster identity and slots (its nodes.conf). */
  startNode(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** Free ports, none twice (a node needs one for clients and one for its cluster bus). */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * A real Redis Cluster of `masters` private `redis-server`s, each with `replicas` replicas, on free
 * ports in a temp directory, joined with `redis-cli --cluster create`; resolves once every node says
 * `cluster_state:ok` and knows every other (and every replica is in sync).
 */
export async function startRedisCluster(masters = 3, timeoutMs = 60_000, replicas = 0): Promise<TestCluster> {
  const nodeCount = masters * (1 + replicas);
  const root = mkdtempSync(join(tmpdir(), 'fax-redis-cluster-'));
  const servers: RedisServer[] = [];
  const busPorts = new Map<number, number>();
  const startNode = async (port: number) => {
    const busPort = busPorts.get(port);
    if (busPort === undefined) throw new Error(`no node of this cluster on port ${port}`);
    servers.push(await startRedisServer({ port, dir: join(root, `node-${port}`), cluster: { busPort } }));
  };
  const stopNode = async (port: number) => {
    const at = servers.findIndex((server) => server.port === port);
    if (at < 0) throw new Error(`no running node on port ${port}`);
    const [server] = servers.splice(at, 1);
    await server?.stop();
  };
  const stop = async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const ports = await distinctFreePorts(nodeCount * 2);
    for (let i = 0; i < nodeCount; i++) {
      const port = ports[2 * i] as number;
      busPorts.set(port, ports[2 * i + 1] as number);
      mkdirSync(join(root, `node-${port}`));
      await startNode(port);
    }
    const addresses = servers.map((server) => `127.0.0.1:${server.port}`);
    await run(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'],
      { timeout: timeoutMs },
    ).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT'
        ? new Error('redis-cli is not installed (it comes with redis-server: apt-get install redis-tools)')
        : error;
    });
    await untilClusterOk(servers, nodeCount, Date.now() + timeoutMs);
    const nodes = addresses.join(',');
    const masterOf = async (key: string) => {
      const client = new Redis(servers[0]?.url as string);
      try {
        const slot = (await client.cluster('KEYSLOT', key)) as number;
        const ranges = await client.cluster('SLOTS');
        const master = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
        if (!master) throw new Error(`no node serves slot ${slot}`);
        return master[1];
      } finally {
        client.disconnect();
      }
    };
    return { nodes, target: parseClusterNodes(nodes), servers, masterOf, stopNode, startNode, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function untilClusterOk(servers: readonly RedisServer[], nodeCount: number, deadline: number) {
  const clients = servers.map((server) => new Redis(server.url, { lazyConnect: true }));
  try {
    for (;;) {
      const infos = await Promise.all(clients.map((client) => client.cluster('INFO') as Promise<string>));
      const ok = infos.every(
        (info) =>
          info.includes('cluster_state:ok') &&
          info.includes('cluster_slots_assigned:16384') &&
          info.includes(`cluster_known_nodes:${nodeCount}`),
      );
      const synced = await Promise.all(
        clients.map(async (client) => {
          const replication = (await client.info('replication')) as string;
          return !replication.includes('role:slave') || replication.includes('master_link_status:up');
        }),
      );
      if (ok && synced.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`Redis Cluster not ok in time:\n${infos.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    for (const client of clients) client.disconnect();
  }
}

/** A 3-master Redis Cluster for one test, stopped when the test ends. */
export async function testCluster(t: ExecutionContext): Promise<TestCluster> {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  return cluster;
}
