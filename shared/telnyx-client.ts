import Telnyx from 'telnyx';
import type { SendFaxRequest } from './fax-request.ts';

/**
 * The calls the pipeline makes to Telnyx, through the official SDK with its own retries off: the SDK
 * would otherwise re-POST a fax after a 5xx or 429 and send it twice. Retrying is the pipeline's call.
 */
export interface TelnyxFax {
  readonly id: string;
  readonly status: string;
  readonly [field: string]: unknown;
}

export type SubmitOutcome =
  /** 202: Telnyx has the fax. */
  | { readonly kind: 'accepted'; readonly fax: TelnyxFax }
  /** 4xx other than 429: sending the same request again cannot help. */
  | { readonly kind: 'rejected'; readonly status: number; readonly detail: string }
  /** 429, 5xx, timeout, connection error: worth another try. `ambiguous`: Telnyx may have created it. */
  | {
      readonly kind: 'retryable';
      readonly status: number | undefined;
      readonly detail: string;
      readonly retryAfterMs: number | undefined;
      readonly ambiguous: boolean;
    };

export interface TelnyxClient {
  submitFax(request: SendFaxRequest): Promise<SubmitOutcome>;
  getFax(telnyxFaxId: string): Promise<TelnyxFax | undefined>;
}

export interface TelnyxClientOptions {
  readonly apiKey: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
}

export function createTelnyxClient(options: TelnyxClientOptions): TelnyxClient {
  const sdk = new Telnyx({
    apiKey: options.apiKey,
    baseURL: options.baseUrl,
    timeout: options.timeoutMs,
    maxRetries: 0,
  });
  return {
    async submitFax(request) {
      try {
        const response = await sdk.faxes.create(request);
        return { kind: 'accepted', fax: response.data as unknown as TelnyxFax };
      } catch (error) {
        return classifySubmitError(error);
      }
    },
    async getFax(telnyxFaxId) {
      try {
        const response = await sdk.faxes.retrieve(telnyxFaxId);
        return response.data as unknown as TelnyxFax;
      } catch (error) {
        if (error instanceof Telnyx.NotFoundError) return undefined;
        throw error;
      }
    },
  };
}

function classifySubmitError(error: unknown): SubmitOutcome {
  if (error instanceof Telnyx.APIConnectionError || !(error instanceof Telnyx.APIError)) {
    // A timeout or a reset after the bytes left may still have created a fax at Telnyx.
    return {
      kind: 'retryable',
      status: undefined,
      detail: error instanceof Error ? error.message : String(error),
      retryAfterMs: undefined,
      ambiguous: true,
    };
  }
  const status = error.status ?? 0;
  const detail = describeErrors(error.error) ?? error.message;
  if (status === 429 || status >= 500 || status === 408) {
    return {
      kind: 'retryable',
      status,
      detail,
      retryAfterMs: retryAfter(error.headers),
      ambiguous: status >= 500 || status === 408,
    };
  }
  return { kind: 'rejected', status, detail };
}

/** `Retry-After` (seconds) or Telnyx's `x-ratelimit-reset` (seconds until the window resets). */
function retryAfter(headers: Headers | undefined): number | undefined {
  const value = headers?.get('retry-after') ?? headers?.get('x-ratelimit-reset');
  if (value === null || value === undefined) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

function describeErrors(body: unknown): string | undefined {
  const errors = (body as { errors?: { code?: string; title?: string; detail?: string }[] } | undefined)
    ?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return undefined;
  return errors.map((e) => [e.code, e.title, e.detail].filter(Boolean).join(' ')).join('; ');
}
