import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { ExecutionContext } from 'ava';
import { SEED_FAX } from './pipeline.ts';

export const FAX_CLI = new URL('../../cli/fax.mjs', import.meta.url).pathname;

/**
 * Runs `fax start <part>` as its own OS process until the test ends; resolves once its log says it
 * is up (`ready` names the line to wait for).
 */
export async function startFaxProcess(
  t: ExecutionContext,
  part: string,
  env: Record<string, string>,
  ready: string,
): Promise<ChildProcess> {
  const child = spawn('node', [FAX_CLI, 'start', part], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fax start ${part} not ready:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      if (output.length < 100_000) output += chunk.toString();
      if (output.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    };
    // Read everything the process writes for as long as it runs, so its pipes never fill.
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fax start ${part} exited with ${code}:\n${output}`));
    });
  });
  return child;
}

/** `fax send` arguments for the seed's fax. */
export const SEND_SEED_FAX = [
  'send',
  '--to',
  SEED_FAX.to,
  '--media-url',
  SEED_FAX.media_url,
  '--from',
  SEED_FAX.from,
  '--connection-id',
  SEED_FAX.connection_id,
];
