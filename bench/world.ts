import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { type RedisServer, startRedisServer } from '../shared/redis-server.ts';
import { startSimulatorService } from '../simulator/main.ts';
import type { SimulatorOptionsInput } from '../simulator/options.ts';

export const logger = createLogger('silent', 'bench');
const FAX_CLI = new URL('../cli/fax.mjs', import.meta.url).pathname;

/** A private redis-server and a simulator for one scenario, and what to close after it. */
export async function startWorld(simulator: SimulatorOptionsInput) {
  const redis: RedisServer = await startRedisServer();
  const sim = await startSimulatorService(logger, 0, '127.0.0.1', { apiKey: 'bench', ...simulator });
  const children: ChildProcess[] = [];
  const spawnChild = (args: string[], childEnv: Record<string, string>) => {
    const child = spawn('node', args, {
      env: { ...process.env, ...childEnv },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  };
  const env = (extra: Record<string, string>) => ({
    REDIS_URL: redis.url,
    FAX_KEY_PREFIX: 'bench',
    FAX_STREAM_KEY: 'bench:events',
    TELNYX_API_KEY: 'bench',
    TELNYX_BASE_URL: `${sim.url}/v2`,
    LOG_LEVEL: 'silent',
    ...extra,
  });
  return {
    redis,
    sim,
    config: (extra: Record<string, string>) => loadConfig(env(extra)),
    /** `fax start worker` in its own process, as deployed. */
    startWorker(extra: Record<string, string>) {
      return spawnChild([FAX_CLI, 'start', 'worker'], env(extra));
    },
    /** A bench script (bench/<name>.ts) in its own process. */
    startScript(name: string, extra: Record<string, string>) {
      return spawnChild(['--import', 'tsx', new URL(`./${name}.ts`, import.meta.url).pathname], env(extra));
    },
    async close() {
      for (const child of children) {
        child.kill('SIGTERM');
        if (child.exitCode === null) await once(child, 'exit');
      }
      await sim.close();
      await redis.stop();
    },
  };
}

export async function until(done: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} did not happen in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A distinct valid destination number per index. */
export const destination = (i: number) => `+1312945${String(1000 + (i % 9000)).padStart(4, '0')}`;

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
