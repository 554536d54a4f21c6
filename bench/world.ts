import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import { loadConfig } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { answers, freePort, type RedisServer, startRedisServer } from '../shared/redis-server.ts';
import { startSimulatorService } from '../simulator/main.ts';
import type { SimulatorOptionsInput } from '../simulator/options.ts';

export const logger = createLogger('silent', 'bench');
const FAX_CLI = new URL('../cli/fax.mjs', import.meta.url).pathname;

/** A child process the bench started, and its HTTP address when it serves one. */
export interface BenchChild {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly url: string;
}

/**
 * A private redis-server, optionally a simulator, and the child processes of one scenario: closed
 * together. Children inherit the bench's environment with the world's Redis and Telnyx filled in.
 */
export async function startWorld(simulator?: SimulatorOptionsInput) {
  const redis: RedisServer = await startRedisServer();
  const sim = simulator
    ? await startSimulatorService(logger, 0, '127.0.0.1', { apiKey: 'bench', ...simulator })
    : undefined;
  const children: ChildProcess[] = [];
  const env = (extra: Record<string, string>) => ({
    REDIS_URL: redis.url,
    FAX_KEY_PREFIX: 'bench',
    FAX_STREAM_KEY: 'bench:events',
    TELNYX_API_KEY: 'bench',
    TELNYX_BASE_URL: sim ? `${sim.url}/v2` : 'http://127.0.0.1:9/v2',
    ...(sim ? { TELNYX_PUBLIC_KEY: sim.simulator.publicKey } : {}),
    // As deployed: the services log at info (to /dev/null here), and pay for it.
    LOG_LEVEL: logLevel(),
    ...extra,
  });
  // BENCH_CPU_PROF=<dir>: every child writes a V8 CPU profile there when it exits (for `--cpu-prof`).
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  /** `cpus` (e.g. "0"): the child runs on those cores only (Linux `taskset`). */
  const spawnChild = (args: string[], childEnv: Record<string, string>, cpus?: string) => {
    const command = ['node', ...profile, ...args];
    const child = spawn(cpus ? 'taskset' : 'node', cpus ? ['-c', cpus, ...command] : command.slice(1), {
      env: { ...process.env, ...env(childEnv) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  };
  /** Spawns an HTTP-serving child on a free port and resolves once the port answers. */
  async function serving(args: string[], portVariable: string, extra: Record<string, string>) {
    const port = await freePort();
    const child = spawnChild(args, { ...extra, [portVariable]: String(port) });
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`bench: ${args.join(' ')} exited (${child.exitCode})`);
        return answers('127.0.0.1', port, 200);
      },
      30_000,
      `${args.join(' ')} listening`,
    );
    return { process: child, pid: child.pid as number, url: `http://127.0.0.1:${port}` };
  }
  return {
    redis,
    /** The simulator, when the scenario asked for one. */
    get sim() {
      if (!sim) throw new Error('bench: this world has no simulator');
      return sim;
    },
    config: (extra: Record<string, string>) => loadConfig(env(extra)),
    /** `fax start worker` in its own process, as deployed (on `cpus` only, if given). */
    startWorker(extra: Record<string, string>, cpus?: string) {
      return spawnChild([FAX_CLI, 'start', 'worker'], extra, cpus);
    },
    /** `fax start producer` or `fax start webhook` in its own process, once it listens. */
    startService(part: 'producer' | 'webhook', extra: Record<string, string>): Promise<BenchChild> {
      const portVariable = part === 'producer' ? 'PRODUCER_PORT' : 'WEBHOOK_PORT';
      return serving([FAX_CLI, 'start', part], portVariable, extra);
    },
    /** A bench script (bench/<name>.ts) in its own process (on `cpus` only, if given). */
    startScript(name: string, extra: Record<string, string>, cpus?: string) {
      return spawnChild(['--import', 'tsx', new URL(`./${name}.ts`, import.meta.url).pathname], extra, cpus);
    },
    /** A bare baseline server (bench/bare-server.ts) in its own process, once it listens. */
    startBare(mode: string, extra: Record<string, string> = {}): Promise<BenchChild> {
      const script = new URL('./bare-server.ts', import.meta.url).pathname;
      return serving(['--import', 'tsx', script], 'PORT', { ...extra, BENCH_BARE: mode });
    },
    async stop(child: ChildProcess) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
    async close() {
      for (const child of children) await this.stop(child);
      await sim?.close();
      await redis.stop();
    },
  };
}

export type World = Awaited<ReturnType<typeof startWorld>>;

/** The services' LOG_LEVEL: BENCH_LOG_LEVEL, else info (the default a deployment runs with). */
export const logLevel = () => process.env.BENCH_LOG_LEVEL || 'info';

export async function until(done: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} did not happen in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A distinct valid US number per index (up to 8 million): Chicago's area code, exchanges 200–999.
 * Distinct numbers keep any per-number caching out of the figures.
 */
export const destination = (i: number) => {
  const exchange = 200 + (Math.floor(i / 10_000) % 800);
  return `+1312${exchange}${String(i % 10_000).padStart(4, '0')}`;
};

/** The fax request every scenario sends, to a destination by index. */
export const benchFax = (i: number) => ({
  connection_id: 'bench',
  from: '+19459457421',
  to: destination(i),
  media_url: 'https://example.com/a.pdf',
});

/**
 * Runs every thread of a running process on `cpus` only (e.g. "1", or "0,1" to undo); false when
 * this machine cannot (no `taskset`, or not Linux).
 */
export function pin(pid: number, cpus: string): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' }).status === 0;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A process's resident memory now and at its peak (VmRSS, VmHWM), in bytes, from /proc (Linux). */
export function residentMemory(pid: number): { readonly rss: number; readonly peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') * 1024, peak: kb('VmHWM') * 1024 };
}

/** Redis's `used_memory` (bytes). */
export async function usedMemory(redis: Redis | Cluster): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1]);
}

/** Calls per command from `INFO commandstats` (scripts count as one `evalsha` each). */
export async function commandCalls(redis: Redis | Cluster): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

/** Redis commands a second run of `action` issued, by name (INFO and CONFIG left out). */
export async function countCommands(
  redis: Redis | Cluster,
  action: () => Promise<void>,
): Promise<Map<string, number>> {
  const before = await commandCalls(redis);
  await action();
  const after = await commandCalls(redis);
  const delta = new Map<string, number>();
  for (const [name, calls] of after) {
    if (name === 'info' || name.startsWith('config')) continue;
    const added = calls - (before.get(name) ?? 0);
    if (added > 0) delta.set(name, added);
  }
  return delta;
}
