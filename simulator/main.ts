import { listen } from '../shared/http-server.ts';
import type { Logger } from '../shared/logger.ts';
import type { SimulatorOptionsInput } from './options.ts';
import { createSimulator } from './simulator.ts';

/** Starts the Telnyx simulator; its API is at `${url}/v2`. */
export async function startSimulatorService(
  logger: Logger,
  port: number,
  host: string,
  options: SimulatorOptionsInput = {},
) {
  const simulator = createSimulator(options);
  const server = await listen(simulator.app, port, host);
  logger
    .child({ service: 'simulator' })
    .info({ url: `${server.url}/v2`, publicKey: simulator.publicKey }, 'Telnyx simulator listening');
  return {
    name: 'simulator',
    url: server.url,
    simulator,
    async close() {
      simulator.close();
      await server.close();
    },
  };
}
