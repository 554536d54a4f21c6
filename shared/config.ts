import { z } from 'zod';
import { isE164 } from './phone.ts';
import { ClusterNodesError, clusterKeyProblems, parseClusterNodes } from './redis-cluster.ts';
import type { RedisTarget } from './redis.ts';
import { loadRetryPolicy, type RetryPolicy, RetryPolicyError } from './retry-policy.ts';

/**
 * Every environment variable the pipeline reads, parsed once at start-up.
 * The names are a contract: deployments and other systems depend on them.
 */
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
// A variable set to nothing (`PORT=` in a compose file) counts as unset: its default, never 0 or ''.
const emptyAsUnset = (value: unknown) => (value === '' ? undefined : value);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(emptyAsUnset, schema.optional());
const withDefault = <T extends z.ZodType>(schema: T, fallback: z.input<T>) =>
  z.preprocess(emptyAsUnset, schema.default(fallback as never));
const port = (fallback: number) => withDefault(z.coerce.number().int().min(0).max(65535), fallback);
const positiveInt = (fallback: number) => withDefault(z.coerce.number().int().positive(), fallback);
const positive = (fallback: number) => withDefault(z.coerce.number().positive(), fallback);
/** A channel or concurrency limit: a whole number (0 = send nothing), or `none` for no limit. */
const limit = (fallback: number | 'none') =>
  z.preprocess(
    emptyAsUnset,
    z
      .union([z.literal('none'), z.coerce.number().int().min(0)], {
        error: 'must be a whole number (0 or more) or "none"',
      })
      .default(fallback),
  );

const ed25519PublicKey = z
  .string()
  .refine(
    (value) => Buffer.from(value, 'base64').length === 32,
    'must be a base64 Ed25519 public key (32 bytes)',
  );

const envFields = z.object({
  NODE_ENV: optional(z.string()),
  REDIS_URL: optional(z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })),
  /** A Redis Cluster instead: seed nodes, `host:port` or `redis[s]://[user:password@]host:port`, comma-separated. */
  REDIS_CLUSTER_NODES: optional(
    z.string().transform((value, ctx) => {
      try {
        return parseClusterNodes(value);
      } catch (error) {
        if (!(error instanceof ClusterNodesError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
        return z.NEVER;
      }
    }),
  ),
  TELNYX_API_KEY: optional(z.string().min(1)),
  TELNYX_BASE_URL: z.preprocess(emptyAsUnset, httpUrl.default('https://api.telnyx.com/v2')),
  TELNYX_PUBLIC_KEY: optional(ed25519PublicKey),
  TELNYX_CONNECTION_ID: optional(z.string().min(1)),
  TELNYX_TIMEOUT_MS: positiveInt(30_000),
  FAX_FROM: optional(z.string().refine(isE164, 'must be an E.164 number such as +13125550100')),
  FAX_API_TOKEN: optional(z.string().min(16, 'must be at least 16 characters')),
  FAX_WEBHOOK_URL: optional(httpUrl),
  /** Hosts `media_url` may point at, comma-separated (`*.example.com` for its subdomains); unset: any. */
  FAX_MEDIA_URL_HOSTS: optional(
    z
      .string()
      .transform((value) =>
        value
          .split(',')
          .map((host) => host.trim().toLowerCase())
          .filter(Boolean),
      )
      .refine(
        (hosts) => hosts.every((host) => /^(\*\.)?[a-z0-9.-]+$/.test(host)),
        'must be host names, comma-separated (*.example.com allowed)',
      ),
  ),
  /**
   * Save received faxes' documents in this directory (the webhook service queues them, workers fetch
   * them, so both need it, on a shared volume if they run apart); unset: consumers get Telnyx's link only.
   */
  FAX_INBOUND_DIR: optional(z.string().min(1)),
  FAX_BIND_HOST: withDefault(z.string(), '127.0.0.1'),
  PRODUCER_PORT: port(3000),
  WEBHOOK_PORT: port(3001),
  SIMULATOR_PORT: port(3002),
  /** Defaults: `fax` and `fax:events`; on a Redis Cluster `{fax}` and `<prefix>:events` (one hash tag). */
  FAX_KEY_PREFIX: optional(
    z.string().regex(/^[A-Za-z0-9:_{}-]+$/, 'may hold letters, digits and :_-{} only'),
  ),
  FAX_STREAM_KEY: optional(z.string().min(1)),
  FAX_STREAM_MAXLEN: positiveInt(1_000_000),
  /** Stream entries older than this are trimmed too (checked every minute); unset: by length only. */
  FAX_STREAM_MAX_AGE_SECONDS: optional(z.coerce.number().positive()),
  FAX_WORKER_CONCURRENCY: positiveInt(16),
  FAX_SUBMIT_ATTEMPTS: positiveInt(5),
  /** How long an Idempotency-Key is remembered. */
  FAX_IDEMPOTENCY_SECONDS: positiveInt(86_400),
  /** A worker that stops renewing its job's lock this long (it died) has the job taken over. */
  FAX_WORKER_LOCK_SECONDS: positive(30),
  /** Channels per Telnyx connection (Fax Application `outbound.channel_limit`). */
  FAX_CHANNEL_LIMIT: limit('none'),
  /** Channels for the whole Telnyx account (2 on a new account, 10 once verified). */
  FAX_ACCOUNT_CHANNEL_LIMIT: limit(2),
  /** Faxes at once to one destination number. */
  FAX_DESTINATION_CONCURRENCY: limit(1),
  /** Requests per second to the Telnyx API, shared by every worker. */
  TELNYX_RATE_LIMIT: z.preprocess(
    emptyAsUnset,
    z
      .union([z.literal('none'), z.coerce.number().positive()], {
        error: 'must be a number of requests per second above 0, or "none"',
      })
      .default(10),
  ),
  /** How long a channel slot is held without news before Telnyx is asked about the fax. */
  FAX_SLOT_LEASE_SECONDS: positive(900),
  /** How long a limit stays lowered after Telnyx reports it exceeded. */
  FAX_LIMIT_BACKOFF_SECONDS: positive(600),
  /** Overrides of the retry policy: inline JSON, or a path to a JSON file (README: "Retries"). */
  FAX_RETRY_POLICY: optional(z.string().min(1)),
  /** Multiplies every retry wait and the time-to-live (tests and demos: 0.001). */
  FAX_RETRY_DELAY_SCALE: positive(1),
  /** A worker's health and metrics port (/healthz, /readyz, /metrics); unset: none (0: any free port). */
  FAX_WORKER_HEALTH_PORT: optional(z.coerce.number().int().min(0).max(65535)),
  /** On SIGTERM/SIGINT, how long a process may take to finish or hand back its work before it exits. */
  FAX_SHUTDOWN_SECONDS: positive(25),
  LOG_LEVEL: withDefault(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
});

/** Key names default by where they live: on a cluster they share one hash tag, so one slot. */
const envSchema = envFields
  .transform((env) => {
    const cluster = env.REDIS_CLUSTER_NODES !== undefined;
    const prefix = env.FAX_KEY_PREFIX ?? (cluster ? '{fax}' : 'fax');
    const stream = env.FAX_STREAM_KEY ?? (cluster ? `${prefix}:events` : 'fax:events');
    return { ...env, FAX_KEY_PREFIX: prefix, FAX_STREAM_KEY: stream };
  })
  .superRefine((env, ctx) => {
    if (env.REDIS_CLUSTER_NODES === undefined) return;
    if (env.REDIS_URL !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['REDIS_CLUSTER_NODES'],
        message: 'set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both',
      });
    }
    for (const problem of clusterKeyProblems(env.FAX_KEY_PREFIX, env.FAX_STREAM_KEY)) {
      ctx.addIssue({ code: 'custom', message: problem });
    }
  });

export type Env = z.output<typeof envSchema>;

export interface Config {
  readonly env: Env;
  /** The Redis configured (REDIS_CLUSTER_NODES, else REDIS_URL); undefined: look for a local one. */
  readonly redis: RedisTarget | undefined;
  /** The retry policy: the defaults with FAX_RETRY_POLICY laid over them. */
  readonly retryPolicy: RetryPolicy;
  /** No real Telnyx key: the simulator stands in for Telnyx. */
  readonly sandbox: boolean;
  readonly production: boolean;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** Parses the environment; throws one {@link ConfigError} naming every bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv | Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) =>
        // Cross-variable problems name their variable in the message itself.
        issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message,
      ),
    );
  }
  const env = parsed.data;
  const production = env.NODE_ENV === 'production';
  const sandbox = env.TELNYX_API_KEY === undefined;
  if (sandbox && production) {
    throw new ConfigError([
      'TELNYX_API_KEY: required when NODE_ENV=production (sandbox mode is for development)',
    ]);
  }
  let retryPolicy: RetryPolicy;
  try {
    retryPolicy = loadRetryPolicy(env.FAX_RETRY_POLICY, env.FAX_RETRY_DELAY_SCALE);
  } catch (error) {
    if (!(error instanceof RetryPolicyError)) throw error;
    throw new ConfigError([error.message]);
  }
  const redis = env.REDIS_CLUSTER_NODES ?? env.REDIS_URL;
  return Object.freeze({ env: Object.freeze(env), redis, sandbox, production, retryPolicy });
}
