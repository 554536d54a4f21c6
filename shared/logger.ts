import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths whose values never reach a log line. */
const redact = [
  'apiKey',
  'token',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'config.env.TELNYX_API_KEY',
  'config.env.FAX_API_TOKEN',
  'env.TELNYX_API_KEY',
  'env.FAX_API_TOKEN',
  'TELNYX_API_KEY',
  'FAX_API_TOKEN',
];

export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  const options = { level, name, redact: { paths: redact, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
