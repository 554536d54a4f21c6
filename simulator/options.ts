import { z } from 'zod';

/** Everything the simulator can be told, at start or at run time (`PUT /simulator/config`). */
export const simulatorOptionsSchema = z.strictObject({
  /** Bearer key it accepts. */
  apiKey: z.string().min(1).default('sandbox'),
  /** Where webhooks go when a fax names no `webhook_url`. */
  webhookUrl: z.string().optional(),
  /** Between lifecycle steps (queued → media.processed → sending.started). */
  stepMs: z.number().int().min(0).default(50),
  /** How long the call lasts (sending.started → delivered). */
  callMs: z.number().int().min(0).default(300),
  /** Destination number → failure_reason: faxes to it fail at the end of the call. */
  failures: z.record(z.string(), z.string()).default({}),
  /** Destination number → the first `times` faxes to it fail with `reason`; later ones go through. */
  failFirst: z
    .record(z.string(), z.strictObject({ reason: z.string(), times: z.number().int().positive() }))
    .default({}),
  /**
   * Channels per connection; a fax accepted over it fails with connection_channel_limit_exceeded, as
   * Telnyx does. `connectionChannelLimits` sets it per connection id.
   */
  channelLimit: z.number().int().positive().optional(),
  connectionChannelLimits: z.record(z.string(), z.number().int().positive()).default({}),
  /** Channels for the whole account; over it: user_channel_limit_exceeded. */
  accountChannelLimit: z.number().int().positive().optional(),
  /** Outbound voice profiles: a limit shared by their connections; over it: outbound_profile_channel_limit_exceeded. */
  outboundProfiles: z
    .record(
      z.string(),
      z.strictObject({ limit: z.number().int().positive(), connections: z.array(z.string()) }),
    )
    .default({}),
  /** Keep the time of every POST and every channel release, and the in-flight timeline (benchmarks). */
  recordTimes: z.boolean().default(false),
  /** Answers for the next POSTs, in order (e.g. [429, 500]); each is used once. */
  failNextPosts: z.array(z.number().int().min(400).max(599)).default([]),
  /** Seconds put in Retry-After / x-ratelimit-reset of an injected 429. */
  retryAfterSeconds: z.number().int().min(0).default(1),
  /** Extra delay before answering any API request. */
  latencyMs: z.number().int().min(0).default(0),
  /** Extra delay before answering `POST /v2/faxes` only (after the fax is created: a slow 202). */
  postLatencyMs: z.number().int().min(0).default(0),
  /** Extra delay before `POST /v2/faxes` creates the fax (Telnyx still working on it when we give up). */
  createDelayMs: z.number().int().min(0).default(0),
  /**
   * The next this many valid POSTs get 504 at once from a gateway in front of Telnyx, while Telnyx goes
   * on and creates the fax (after `createDelayMs`).
   */
  gatewayTimeouts: z.number().int().min(0).default(0),
  /** Hold every webhook back this long before its first try. */
  webhookDelayMs: z.number().int().min(0).default(0),
  /** Send every webhook twice. */
  duplicateWebhooks: z.boolean().default(false),
  /** Send the terminal webhook before sending.started. */
  reorderWebhooks: z.boolean().default(false),
  /** Never send terminal webhooks (the fax still ends at the simulator). */
  dropTerminalWebhooks: z.boolean().default(false),
  /** How long an inbound fax's media link works (Telnyx's: about 10 minutes); refresh renews it. */
  mediaLinkMs: z.number().int().min(0).default(600_000),
  /** Announce received faxes as `fax.delivered` with direction inbound (some accounts do) instead of `fax.received`. */
  inboundAsDelivered: z.boolean().default(false),
  /** Tries per webhook before giving up, with doubling waits, as Telnyx retries. */
  webhookAttempts: z.number().int().min(1).default(5),
});

export type SimulatorOptions = z.infer<typeof simulatorOptionsSchema>;
export type SimulatorOptionsInput = z.input<typeof simulatorOptionsSchema>;
