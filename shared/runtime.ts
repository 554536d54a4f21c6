import type { Config } from './config.ts';
import type { Keys } from './keys.ts';
import type { Logger } from './logger.ts';
import type { SlotSettings } from './slots/settings.ts';

/** What every service is started with: parsed config and the resolved outside world. */
export interface Runtime {
  readonly config: Config;
  readonly redisUrl: string;
  readonly keys: Keys;
  readonly logger: Logger;
  /** Telnyx as resolved at start: the real API, or the simulator in sandbox mode. */
  readonly telnyx: {
    readonly apiKey: string;
    readonly baseUrl: string;
    /** Verifies webhooks; undefined only when no webhook service runs. */
    readonly publicKey: string | undefined;
  };
  /** Sent to Telnyx as `webhook_url` with every fax. */
  readonly webhookUrl: string | undefined;
  readonly streamMaxLen: number;
  /** Channel slot settings from the environment (limits, lease). */
  readonly slots: SlotSettings;
}

/** A started service: stop it and it has closed everything it opened. */
export interface Service {
  readonly name: string;
  close(): Promise<void>;
}
