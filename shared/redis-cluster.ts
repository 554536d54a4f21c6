/**
 * Redis Cluster: where its nodes are (REDIS_CLUSTER_NODES) and the hash tag rule that lets the
 * pipeline's scripts run on it. Every key the pipeline touches carries one hash tag, so all of them
 * live in one slot: each Lua script, MULTI and pipeline then stays on one node.
 */

/** A Redis Cluster to connect to: seed nodes (the others are discovered) and how to log in. */
export interface RedisClusterTarget {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** `rediss://` nodes: TLS to every node. */
  readonly tls: boolean;
}

export class ClusterNodesError extends Error {
  readonly code = 'CLUSTER_NODES_INVALID';
}

/**
 * Parses REDIS_CLUSTER_NODES: comma-separated seed nodes, each `host:port` or a `redis://` /
 * `rediss://` URL (for a password or TLS); every node must use the same scheme and credentials.
 * Throws {@link ClusterNodesError} naming the bad entry.
 */
export function parseClusterNodes(value: string): RedisClusterTarget {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new ClusterNodesError('must list at least one node as host:port');
  const parsed = entries.map(parseNode);
  const [first] = parsed as [ParsedNode, ...ParsedNode[]];
  for (const node of parsed) {
    if (node.tls !== first.tls || node.username !== first.username || node.password !== first.password) {
      throw new ClusterNodesError(
        `every node must use the same scheme (redis:// or rediss://) and credentials; "${node.entry}" differs from "${first.entry}"`,
      );
    }
  }
  return Object.freeze({
    nodes: Object.freeze(parsed.map(({ host, port }) => Object.freeze({ host, port }))),
    username: first.username,
    password: first.password,
    tls: first.tls,
  });
}

interface ParsedNode {
  readonly entry: string;
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

function parseNode(entry: string): ParsedNode {
  const bad = (why: string) =>
    new ClusterNodesError(
      `"${redact(entry)}": ${why} (expected host:port or redis://[user:password@]host:port)`,
    );
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry);
  let url: URL;
  try {
    url = new URL(hasScheme ? entry : `redis://${entry}`);
  } catch {
    throw bad('not a node address');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw bad('scheme must be redis or rediss');
  if (url.hostname === '') throw bad('no host');
  if (url.port === '') throw bad('no port');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw bad('a cluster has no databases or options in the address');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    entry: redact(entry),
    host,
    port: Number(url.port),
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    tls: url.protocol === 'rediss:',
  };
}

/** Hides a password in an address, for messages and logs. */
function redact(entry: string): string {
  return entry.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/**
 * The hash tag of a key as Redis Cluster reads it: what is between the first `{` and the first `}`
 * after it, if that is not empty; undefined when the whole key is hashed.
 */
export function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return undefined;
  return key.slice(open + 1, close);
}

/**
 * Why a key prefix and stream key cannot serve a Redis Cluster (empty: they can). Every key is
 * `<prefix>:...` or `<stream>...`, so when both carry the same hash tag every key does: one slot.
 */
export function clusterKeyProblems(prefix: string, stream: string): string[] {
  const tag = hashTag(prefix);
  if (tag === undefined) {
    return [
      `FAX_KEY_PREFIX: "${prefix}" has no hash tag; on a Redis Cluster every key of the pipeline must share one, e.g. {fax}`,
    ];
  }
  if (hashTag(stream) !== tag) {
    return [
      `FAX_STREAM_KEY: "${stream}" must carry the hash tag of FAX_KEY_PREFIX ({${tag}}) on a Redis Cluster, e.g. ${prefix}:events`,
    ];
  }
  return [];
}
