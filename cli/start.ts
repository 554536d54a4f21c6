import type { Service } from '../shared/runtime.ts';
import { startProducerService } from '../producer/main.ts';
import { startSimulatorService } from '../simulator/main.ts';
import { startWebhookService } from '../webhook/main.ts';
import { startWorkerService } from '../worker/main.ts';
import { configOrExit, resolveRuntime } from './runtime.ts';
import { createLogger } from '../shared/logger.ts';

export const PARTS = ['all', 'producer', 'worker', 'webhook', 'simulator'] as const;
export type Part = (typeof PARTS)[number];

/** `fax start <part>`: runs one part (or all) until SIGINT/SIGTERM, then closes everything and exits 0. */
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
    onSignal(closers, logger);
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
  closers.push(...services.reverse(), ...infrastructure.reverse());
  onSignal(closers, runtime.logger);
}

function onSignal(
  closers: { name: string; close(): Promise<void> }[],
  logger: { info: (msg: string) => void },
) {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down');
    for (const closer of closers) await closer.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
