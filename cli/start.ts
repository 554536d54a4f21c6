import type { Service } from '../shared/runtime.ts';
import { startProducerService } from '../producer/main.ts';
import { startSimulatorService } from '../simulator/main.ts';
import { startWebhookService } from '../webhook/main.ts';
import { startWorkerService } from '../worker/main.ts';
import { configOrExit, resolveRuntime } from './runtime.ts';
import { createLogger, type Logger } from '../shared/logger.ts';

export const PARTS = ['all', 'producer', 'worker', 'webhook', 'simulator'] as const;
export type Part = (typeof PARTS)[number];

/**
 * `fax start <part>`: runs one part (or all) until SIGINT/SIGTERM, then closes everything gracefully
 * and exits 0 — or 1 if that took longer than FAX_SHUTDOWN_SECONDS.
 */
export async function startCommand(part: Part): Promise<void> {
  const config = configOrExit();
  const { env } = config;
  const closers: { name: string; close(): Promise<void> }[] = [];

  if (part === 'simulator') {
    const logger = createLogger(env.LOG_LEVEL, 'fax');
    closers.push(
      await startSimulatorService(logger, env.SIMULATOR_PORT, env.FAX_BIND_HOST, {
        apiKey: env.TELNYX_API_KEY ?? 'sandbox',
        webhookUrl: env.FAX_WEBHOOK_URL ?? `http://127.0.0.1:${env.WEBHOOK_PORT}/webhooks/telnyx`,
      }),
    );
    onSignal(closers, logger, env.FAX_SHUTDOWN_SECONDS);
    return;
  }

  const { runtime, infrastructure } = await resolveRuntime(config, part !== 'producer');
  const services: Service[] = [];
  try {
    if (part === 'all' || part === 'webhook') services.push(await startWebhookService(runtime));
    if (part === 'all' || part === 'worker') services.push(await startWorkerService(runtime));
    if (part === 'all' || part === 'producer') services.push(await startProducerService(runtime));
  } catch (error) {
    runtime.logger.fatal({ err: error }, 'start-up failed');
    for (const service of [...services.reverse(), ...infrastructure.reverse()]) await service.close();
    process.exit(1);
  }
  if (part === 'all' || part === 'producer') {
    const token = env.FAX_API_TOKEN ? ' --header "Authorization: Bearer $FAX_API_TOKEN"' : '';
    runtime.logger.info(
      `ready: curl -X POST http://127.0.0.1:${env.PRODUCER_PORT}/v2/faxes --data-urlencode "media_url=https://www.w3.org/WAI/ER/tests/xhtml/testfiles/resources/pdf/dummy.pdf" --data-urlencode "connection_id=1232154810234" --data-urlencode "to=+13129457420" --data-urlencode "from=+19459457421"${token}`,
    );
  }
  // Stop taking work first (HTTP, worker), then the infrastructure they use.
  // In `all`, the producer stops first and the webhook service last, so webhooks of faxes the worker
  // is still sending keep being taken in.
  closers.push(...services.reverse(), ...infrastructure.reverse());
  onSignal(closers, runtime.logger, env.FAX_SHUTDOWN_SECONDS);
}

/**
 * Graceful shutdown: each part in turn stops taking work and finishes or hands back what it holds.
 * Past the deadline the process exits anyway (1): a job it still held is taken over by another worker
 * once its lock runs out (FAX_WORKER_LOCK_SECONDS), which asks Telnyx before sending anything again.
 * A second signal exits at once, the same way.
 */
function onSignal(
  closers: { name: string; close(): Promise<void> }[],
  logger: Logger,
  deadlineSeconds: number,
) {
  let stopping = false;
  let closing = '';
  const giveUp = (why: string) => {
    logger.error({ closing }, `${why}: exiting with work unfinished; other workers take over its jobs`);
    process.exit(1);
  };
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) giveUp(`${signal} again while shutting down`);
    stopping = true;
    logger.info({ signal, deadlineSeconds }, 'shutting down');
    const timer = setTimeout(() => giveUp('shutdown deadline passed'), deadlineSeconds * 1000);
    let failed = false;
    for (const closer of closers) {
      closing = closer.name;
      try {
        await closer.close();
      } catch (error) {
        failed = true;
        logger.error({ err: error, closing }, 'closing failed');
      }
    }
    clearTimeout(timer);
    logger.info('stopped');
    process.exit(failed ? 1 : 0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
