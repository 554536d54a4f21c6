import { hostname } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { faxResource } from '../producer/fax-resource.ts';
import { createProducer } from '../producer/producer.ts';
import {
  FaxCancelError,
  FaxNotFoundError,
  FaxValidationError,
  IdempotencyKeyError,
} from '../shared/errors.ts';
import { createTelnyxClient } from '../shared/telnyx-client.ts';
import { QUALITIES } from '../shared/fax-request.ts';
import { FAX_PRIORITIES } from '../shared/priority.ts';
import { createKeys } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { connectRedis, waitReady } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { printEvents } from './events.ts';
import { addLimitsCommands } from './limits.ts';
import { configOrExit } from './runtime.ts';
import { PARTS, type Part, startCommand } from './start.ts';

// Output piped into a reader that stops early (`fax events | head`): end quietly, as Unix tools do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

/** A connection for one-shot commands: REDIS_CLUSTER_NODES or REDIS_URL, else the local default. */
async function openStore() {
  const config = configOrExit();
  const { env } = config;
  const redis = connectRedis(config.redis ?? 'redis://127.0.0.1:6379', { failFast: true, name: 'fax-cli' });
  redis.on('error', () => undefined);
  try {
    await waitReady(redis);
  } catch {
    process.stderr.write(
      'fax: cannot reach Redis: set REDIS_URL=redis://host:6379 (or REDIS_CLUSTER_NODES=host:port,... for a cluster)\n',
    );
    process.exit(1);
  }
  return {
    config,
    redis,
    keys: createKeys(env.FAX_KEY_PREFIX, env.FAX_STREAM_KEY),
    slots: slotSettings(env, env.FAX_KEY_PREFIX),
  };
}

const program = new Command('fax').description('Telnyx fax pipeline: queue, send and follow faxes');

program
  .command('start')
  .description('run part of the pipeline (all = producer API, worker and webhook service in one process)')
  .argument(
    '[part]',
    `one of ${PARTS.join(', ')}`,
    (value) => {
      if (!(PARTS as readonly string[]).includes(value))
        throw new InvalidArgumentError(`must be one of ${PARTS.join(', ')}`);
      return value;
    },
    'all',
  )
  .action((part: Part) => startCommand(part));

program
  .command('send')
  .description('queue a fax; prints its id')
  .requiredOption('--to <number>', 'destination: E.164 number or SIP URI')
  .option('--media-url <url>', 'http(s) URL of the document')
  .option('--media-name <name>', 'a document uploaded to Telnyx media storage')
  .option('--from <number>', 'sender E.164 number (default FAX_FROM)')
  .option('--connection-id <id>', 'Telnyx fax application id (default TELNYX_CONNECTION_ID)')
  .addOption(new Option('--quality <quality>').choices(QUALITIES))
  .option('--client-state <base64>', 'echoed back in every event of this fax')
  .option('--from-display-name <name>', 'caller id name')
  .option('--idempotency-key <key>', 'the same key again gives back the same fax instead of a second one')
  .addOption(new Option('--priority <priority>', 'order when channels are scarce').choices(FAX_PRIORITIES))
  .option('--send-at <time>', 'not before this ISO 8601 time (e.g. 2026-12-01T09:00:00Z)')
  .option(
    '--window <hours>',
    'only within office hours in the recipient\'s time zone: "mon-fri 08:00-18:00", or with the zone named: "mon-fri 08:00-18:00 America/Chicago"',
  )
  .option('--ttl <seconds>', 'fail the fax (expired) if it is still unsent this long after it was due')
  .option(
    '--tag <key=value>',
    'metadata carried on every event of the fax (repeatable)',
    (value: string, tags: Record<string, string> = {}) => {
      const at = value.indexOf('=');
      if (at < 1) throw new InvalidArgumentError('a tag is key=value');
      return { ...tags, [value.slice(0, at)]: value.slice(at + 1) };
    },
  )
  .action(async (options: Record<string, string | undefined> & { tag?: Record<string, string> }) => {
    const { config, redis, keys, slots } = await openStore();
    const producer = createProducer({
      redis,
      keys,
      slots,
      logger: createLogger('silent', 'fax-cli'),
      defaults: { connectionId: config.env.TELNYX_CONNECTION_ID, from: config.env.FAX_FROM },
      submitAttempts: config.env.FAX_SUBMIT_ATTEMPTS,
      streamMaxLen: config.env.FAX_STREAM_MAXLEN,
      retryPolicy: config.retryPolicy,
      idempotencySeconds: config.env.FAX_IDEMPOTENCY_SECONDS,
      mediaUrlHosts: config.env.FAX_MEDIA_URL_HOSTS,
    });
    const fax = Object.fromEntries(
      Object.entries({
        to: options.to,
        media_url: options.mediaUrl,
        media_name: options.mediaName,
        from: options.from,
        connection_id: options.connectionId,
        quality: options.quality,
        client_state: options.clientState,
        from_display_name: options.fromDisplayName,
        tags: options.tag,
        priority: options.priority,
        send_at: options.sendAt,
        sending_window: options.window,
        ttl_seconds:
          options.ttl !== undefined && /^\d+$/.test(options.ttl) ? Number(options.ttl) : options.ttl,
      }).filter(([, value]) => value !== undefined),
    );
    try {
      const { idempotencyKey } = options;
      const queued = await producer.queue(fax, idempotencyKey === undefined ? {} : { idempotencyKey });
      const state = queued.replayed ? (await producer.get(queued.id)).status : 'queued';
      process.stdout.write(
        `${JSON.stringify({ id: queued.id, status: state, replayed: queued.replayed })}\n`,
      );
    } catch (error) {
      if (error instanceof IdempotencyKeyError) {
        process.stderr.write(`fax: --idempotency-key: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (!(error instanceof FaxValidationError)) throw error;
      for (const problem of error.problems) process.stderr.write(`fax: ${problem.detail}\n`);
      process.exitCode = 2;
    } finally {
      await producer.close();
      redis.disconnect();
    }
  });

program
  .command('status')
  .description("print a fax's state and history as JSON")
  .argument('<id>', 'our fax id')
  .action(async (id: string) => {
    const { redis, keys } = await openStore();
    const producer = createProducer({ redis, keys, logger: createLogger('silent', 'fax-cli') });
    try {
      process.stdout.write(`${JSON.stringify(faxResource(await producer.get(id)), null, 2)}\n`);
    } catch (error) {
      if (!(error instanceof FaxNotFoundError)) throw error;
      process.stderr.write(`fax: no fax with id ${id}\n`);
      process.exitCode = 1;
    } finally {
      await producer.close();
      redis.disconnect();
    }
  });

program
  .command('cancel')
  .description('cancel a fax: taken out of the queue, or cancelled at Telnyx')
  .argument('<id>', 'our fax id')
  .action(async (id: string) => {
    const { config, redis, keys, slots } = await openStore();
    const { env } = config;
    const telnyx = createTelnyxClient({
      apiKey: env.TELNYX_API_KEY ?? 'sandbox',
      baseUrl: env.TELNYX_API_KEY ? env.TELNYX_BASE_URL : `http://127.0.0.1:${env.SIMULATOR_PORT}/v2`,
      timeoutMs: env.TELNYX_TIMEOUT_MS,
    });
    const producer = createProducer({
      redis,
      keys,
      slots,
      logger: createLogger('silent', 'fax-cli'),
      telnyx,
    });
    try {
      const { where } = await producer.cancel(id);
      process.stdout.write(`${JSON.stringify({ id, cancelled: where })}\n`);
    } catch (error) {
      if (error instanceof FaxNotFoundError) process.stderr.write(`fax: no fax with id ${id}\n`);
      else if (error instanceof FaxCancelError) process.stderr.write(`fax: ${error.message}\n`);
      else throw error;
      process.exitCode = error instanceof FaxCancelError && error.reason === 'busy' ? 3 : 1;
    } finally {
      await producer.close();
      await telnyx.close();
      redis.disconnect();
    }
  });

program
  .command('events')
  .description('print status stream entries as JSON lines')
  .option('-f, --follow', 'keep waiting for new entries', false)
  .option('-g, --group <name>', 'read through this consumer group (acknowledging what is printed)')
  .option('--consumer <name>', 'consumer name within the group', `${hostname()}-${process.pid}`)
  .option(
    '--from <id|time>',
    'start after this stream id (0 = beginning, $ = only new) or at an ISO 8601 time',
    '0',
  )
  .option('--rewind', 'with --group: move an existing group to --from (replay)', false)
  .action(
    async (options: { follow: boolean; group?: string; consumer: string; from: string; rewind: boolean }) => {
      const { redis, keys } = await openStore();
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      process.once('SIGTERM', () => controller.abort());
      await printEvents(redis, keys, {
        ...options,
        write: (line) => process.stdout.write(line),
        signal: controller.signal,
      });
      redis.disconnect();
    },
  );

addLimitsCommands(program, openStore);

await program.parseAsync(process.argv);
