/**
 * The library: queue faxes from your own code, and read the status stream.
 * Services are started with the `fax` command (see README).
 */
export {
  createProducer,
  type Producer,
  type ProducerDeps,
  type QueuedFax,
  type SendOptions,
} from './producer/producer.ts';
export { loadConfig, ConfigError, type Config } from './shared/config.ts';
export {
  FaxCancelError,
  FaxNotFoundError,
  FaxValidationError,
  IdempotencyKeyError,
  ServiceUnavailableError,
} from './shared/errors.ts';
export { parseStreamEntry, type StreamEntry } from './shared/events.ts';
export { type SubscribeOptions, subscribe } from './shared/subscribe.ts';
export { parseSendFaxRequest, type SendFaxRequest } from './shared/fax-request.ts';
export { nextOpening, type SendingWindow } from './shared/sending-window.ts';
export { createKeys, type Keys } from './shared/keys.ts';
export { createLogger } from './shared/logger.ts';
export { connectRedis, type FaxRedis, type RedisTarget, waitReady } from './shared/redis.ts';
export { createTelnyxClient, type TelnyxClient } from './shared/telnyx-client.ts';
export { hashTag, parseClusterNodes, type RedisClusterTarget } from './shared/redis-cluster.ts';
export { FAX_STATUSES, type FaxStatus } from './shared/status.ts';
/** Channel slot state for monitoring; change limits with `fax limits` (it also wakes waiting faxes). */
export { type LimitsSnapshot, readLimits, type ScopeState } from './shared/slots/limits.ts';
export { type SlotSettings, slotSettings } from './shared/slots/settings.ts';
