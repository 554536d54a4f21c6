import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { SendFaxRequest } from './fax-request.ts';

/**
 * The two calls the worker makes to Telnyx: `POST /v2/faxes` and `GET /v2/faxes/{id}`, over Node's
 * own HTTP client with keep-alive connections (the cheapest in CPU per call: `npm run bench`). Nothing
 * here retries: a re-sent POST would send a second fax, so retrying is the pipeline's call (the
 * official SDK's own retries are exactly that hazard).
 */
export interface TelnyxFax {
  readonly id: string;
  readonly status: string;
  readonly [field: string]: unknown;
}

export type SubmitOutcome =
  /** 202: Telnyx has the fax. */
  | { readonly kind: 'accepted'; readonly fax: TelnyxFax }
  /** Not written at all: the connection was ready only after `writeBy`. */
  | { readonly kind: 'not-sent' }
  /** 4xx other than 408 and 429: sending the same request again cannot help. */
  | { readonly kind: 'rejected'; readonly status: number; readonly detail: string }
  /** 429, 408, 5xx, timeout, connection error: worth another try. `ambiguous`: Telnyx may have created it. */
  | {
      readonly kind: 'retryable';
      readonly status: number | undefined;
      readonly detail: string;
      readonly retryAfterMs: number | undefined;
      readonly ambiguous: boolean;
    };

export interface FaxListQuery {
  readonly to: string;
  /** ISO 8601: only faxes created at or after this moment. */
  readonly createdAtGte: string;
  readonly pageNumber: number;
  readonly pageSize: number;
}

export interface TelnyxClient {
  /**
   * `POST /v2/faxes`. With `writeBy` (a `performance.now()` time), the request is not written at all
   * if its connection is only ready after then (`not-sent`): the caller's claim to send may be stale.
   */
  submitFax(request: SendFaxRequest, options?: { readonly writeBy?: number }): Promise<SubmitOutcome>;
  /** `GET /v2/faxes` filtered by `to` and `created_at`; throws on anything but 200. */
  listFaxes(
    query: FaxListQuery,
  ): Promise<{ readonly faxes: readonly TelnyxFax[]; readonly totalPages: number }>;
  /**
   * `POST /v2/faxes/{id}/actions/cancel`: `cancelled` (202), `not-cancellable` (422: its status no
   * longer allows it) or `unknown` (404). Throws on anything else.
   */
  cancelFax(telnyxFaxId: string): Promise<'cancelled' | 'not-cancellable' | 'unknown'>;
  /** The fax as Telnyx has it; undefined when Telnyx answers 404. Throws on anything else. */
  getFax(telnyxFaxId: string): Promise<TelnyxFax | undefined>;
  /**
   * `POST /v2/faxes/{id}/actions/refresh`: renews an inbound fax's media link (read it with
   * {@link TelnyxClient.getFax}). False when Telnyx answers 404; throws on anything but 200.
   */
  refreshFax(telnyxFaxId: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface TelnyxClientOptions {
  readonly apiKey: string;
  /** Including `/v2`, e.g. https://api.telnyx.com/v2 (TELNYX_BASE_URL). */
  readonly baseUrl: string;
  readonly timeoutMs: number;
}

/** Errors raised before any byte of the request could have reached Telnyx. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

export class TelnyxRequestError extends Error {
  readonly code = 'TELNYX_REQUEST_FAILED';
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly json: unknown;
  readonly text: string;
}

export function createTelnyxClient(options: TelnyxClientOptions): TelnyxClient {
  const base = new URL(`${options.baseUrl.replace(/\/+$/, '')}/`);
  const secure = base.protocol === 'https:';
  const agent = new (secure ? https : http).Agent({ keepAlive: true, maxSockets: 128 });
  const basePath = base.pathname.replace(/\/$/, '');
  const headers = {
    authorization: `Bearer ${options.apiKey}`,
    accept: 'application/json',
    'user-agent': 'telnyx-fax-pipeline',
  };

  function call(method: 'GET' | 'POST', path: string, body?: unknown, writeBy?: number): Promise<Response> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(
        {
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port || undefined,
          path: `${basePath}${path}`,
          method,
          agent,
          // No byte for this long (connecting, or waiting for the answer): give up on the call.
          timeout: options.timeoutMs,
          headers:
            payload === undefined
              ? headers
              : {
                  ...headers,
                  'content-type': 'application/json',
                  'content-length': Buffer.byteLength(payload),
                },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('error', fail);
          response.on('end', () => {
            let json: unknown;
            try {
              json = text === '' ? undefined : JSON.parse(text);
            } catch {
              json = undefined;
            }
            clearTimeout(overall);
            resolve({ status: response.statusCode ?? 0, headers: response.headers, json, text });
          });
        },
      );
      const timedOut = () =>
        request.destroy(
          Object.assign(new Error(`no answer from Telnyx in ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' }),
        );
      // The whole call, not only each silence, ends within the timeout: a POST that may have reached
      // Telnyx has surely ended here by then, which is what the wait before a lookup counts on.
      const overall = setTimeout(timedOut, options.timeoutMs);
      let written = writeBy === undefined;
      function fail(error: Error) {
        clearTimeout(overall);
        // With a deferred write, a call that failed before writing anything certainly sent nothing.
        reject(written ? error : Object.assign(error, { notWritten: true }));
      }
      request.on('timeout', timedOut);
      request.on('error', fail);
      if (writeBy === undefined) {
        request.end(payload);
        return;
      }
      // Nothing is written until the connection is ready, and nothing at all if that is too late.
      request.once('socket', (socket) => {
        const write = () => {
          if (performance.now() > writeBy) {
            request.destroy(
              Object.assign(new Error('not sent: its claim to send went stale'), { code: 'ESTALE' }),
            );
          } else {
            written = true;
            request.end(payload);
          }
        };
        if (socket.connecting) socket.once(secure ? 'secureConnect' : 'connect', write);
        else write();
      });
    });
  }

  return {
    async submitFax(fax, submitOptions = {}) {
      let response: Response;
      try {
        response = await call('POST', '/faxes', fax, submitOptions.writeBy);
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        if (code === 'ESTALE') return { kind: 'not-sent' };
        return {
          kind: 'retryable',
          status: undefined,
          detail: error instanceof Error ? error.message : String(error),
          retryAfterMs: undefined,
          // A timeout or a reset after the bytes left may still have created a fax at Telnyx.
          ambiguous: !NOT_SENT.has(code) && (error as { notWritten?: boolean }).notWritten !== true,
        };
      }
      const { status } = response;
      if (status >= 200 && status < 300) {
        const fax = (response.json as { data?: TelnyxFax } | undefined)?.data;
        if (fax && typeof fax.id === 'string') return { kind: 'accepted', fax };
        return {
          kind: 'retryable',
          status,
          detail: `Telnyx answered ${status} without a fax id`,
          retryAfterMs: undefined,
          ambiguous: true,
        };
      }
      const detail = describeErrors(response.json) ?? (response.text.slice(0, 300) || `HTTP ${status}`);
      if (status === 429 || status === 408 || status >= 500) {
        return {
          kind: 'retryable',
          status,
          detail,
          retryAfterMs: retryAfter(response.headers),
          ambiguous: status >= 500 || status === 408,
        };
      }
      return { kind: 'rejected', status, detail };
    },

    async listFaxes(query) {
      const search = new URLSearchParams({
        'filter[to][eq]': query.to,
        'filter[created_at][gte]': query.createdAtGte,
        'filter[direction][eq]': 'outbound',
        'page[number]': String(query.pageNumber),
        'page[size]': String(query.pageSize),
      });
      let response: Response;
      try {
        response = await call('GET', `/faxes?${search}`);
      } catch (error) {
        throw new TelnyxRequestError('GET /faxes failed', undefined, { cause: error });
      }
      // Some APIs answer a list with no match 404: that is "none".
      if (response.status === 404) return { faxes: [], totalPages: 1 };
      const body = response.json as { data?: TelnyxFax[]; meta?: { total_pages?: number } } | undefined;
      if (response.status !== 200 || !Array.isArray(body?.data)) {
        throw new TelnyxRequestError(`GET /faxes answered ${response.status}`, response.status);
      }
      return { faxes: body.data, totalPages: Number(body.meta?.total_pages ?? 1) };
    },

    async cancelFax(telnyxFaxId) {
      let response: Response;
      try {
        response = await call('POST', `/faxes/${encodeURIComponent(telnyxFaxId)}/actions/cancel`, {});
      } catch (error) {
        throw new TelnyxRequestError(`cancel of ${telnyxFaxId} failed`, undefined, { cause: error });
      }
      if (response.status === 202 || response.status === 200) return 'cancelled';
      if (response.status === 422) return 'not-cancellable';
      if (response.status === 404) return 'unknown';
      throw new TelnyxRequestError(`cancel of ${telnyxFaxId} answered ${response.status}`, response.status);
    },

    async refreshFax(telnyxFaxId) {
      let response: Response;
      try {
        response = await call('POST', `/faxes/${encodeURIComponent(telnyxFaxId)}/actions/refresh`, {});
      } catch (error) {
        throw new TelnyxRequestError(`refresh of ${telnyxFaxId} failed`, undefined, { cause: error });
      }
      if (response.status === 404) return false;
      if (response.status !== 200) {
        throw new TelnyxRequestError(
          `refresh of ${telnyxFaxId} answered ${response.status}: ${describeErrors(response.json) ?? response.text.slice(0, 300)}`,
          response.status,
        );
      }
      return true;
    },

    async getFax(telnyxFaxId) {
      let response: Response;
      try {
        response = await call('GET', `/faxes/${encodeURIComponent(telnyxFaxId)}`);
      } catch (error) {
        throw new TelnyxRequestError(`GET /faxes/${telnyxFaxId} failed`, undefined, { cause: error });
      }
      if (response.status === 404) return undefined;
      const fax = (response.json as { data?: TelnyxFax } | undefined)?.data;
      if (response.status !== 200 || !fax) {
        throw new TelnyxRequestError(
          `GET /faxes/${telnyxFaxId} answered ${response.status}: ${describeErrors(response.json) ?? response.text.slice(0, 300)}`,
          response.status,
        );
      }
      return fax;
    },

    async close() {
      agent.destroy();
    },
  };
}

/** `Retry-After` (seconds) or Telnyx's `x-ratelimit-reset` (seconds until the window resets). */
function retryAfter(headers: IncomingHttpHeaders): number | undefined {
  const first = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const value = first('retry-after') ?? first('x-ratelimit-reset');
  if (value === undefined) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

function describeErrors(body: unknown): string | undefined {
  const list = (body as { errors?: { code?: string; title?: string; detail?: string }[] } | undefined)
    ?.errors;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  return list.map((e) => [e.code, e.title, e.detail].filter(Boolean).join(' ')).join('; ');
}
