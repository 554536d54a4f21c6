import Router from '@koa/router';
import parseBody from 'co-body';
import Koa from 'koa';
import getRawBody from 'raw-body';
import { bearerMatches } from '../shared/bearer.ts';
import { decodeClientState } from '../shared/client-state.ts';
import { coerceFormFields, MAX_CONTENTS_BYTES, parseTelnyxSendFax } from '../shared/fax-request.ts';
import { errorBody, fieldErrors, type TelnyxErrorBody } from '../shared/telnyx-errors.ts';
import { createLifecycle, type Lifecycle, preciseNow, type SimFax } from './fax-lifecycle.ts';
import { type SimulatorOptions, type SimulatorOptionsInput, simulatorOptionsSchema } from './options.ts';
import { createWebhookSigner } from './signer.ts';

/**
 * A fake Telnyx fax API for tests, demos and load runs: the `/v2/faxes` endpoints in the shapes of
 * Telnyx's OpenAPI spec, a lifecycle that sends Ed25519-signed webhooks, channel limits and faults on
 * demand, and counters that show what it received. `/simulator/*` controls it.
 */
export interface Simulator {
  readonly app: Koa;
  readonly publicKey: string;
  readonly lifecycle: Lifecycle;
  /** Signed webhook headers for a body: Telnyx's exact scheme with this simulator's key. */
  signerHeaders(body: string, timestampSeconds?: number): Record<string, string>;
  options(): SimulatorOptions;
  configure(patch: Partial<SimulatorOptionsInput>): void;
  close(): void;
}

export function createSimulator(input: SimulatorOptionsInput = {}): Simulator {
  let options = simulatorOptionsSchema.parse(input);
  const signer = createWebhookSigner();
  const lifecycle = createLifecycle(() => options, signer);
  const app = new Koa();
  const api = new Router({ prefix: '/v2' });
  const control = new Router({ prefix: '/simulator' });

  app.use(async (ctx, next) => {
    if (!ctx.path.startsWith('/v2/')) return next();
    if (options.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, options.latencyMs));
    if (!bearerMatches(ctx.get('authorization'), options.apiKey)) {
      ctx.status = 401;
      ctx.body = errorBody(
        'authenticationFailed',
        'The required authentication headers were either invalid or not included in the request.',
      );
      return;
    }
    await next();
  });

  api.post('/faxes', async (ctx) => {
    lifecycle.stats.posts++;
    if (options.recordTimes) lifecycle.stats.postTimes.push(preciseNow());
    let body: Record<string, unknown>;
    try {
      body = await readSendFax(ctx);
    } catch (error) {
      if ((error as { status?: number }).status === 413) {
        ctx.status = 413;
        ctx.body = errorBody('payloadTooLarge', 'The request body is larger than Telnyx accepts (20 MB).');
        return;
      }
      ctx.status = 400;
      ctx.body = errorBody('badRequest', 'The request failed because it was not well-formed.');
      return;
    }
    const key = decodeClientState(body.client_state)?.faxId ?? String(body.to);
    lifecycle.stats.postsByFax[key] = (lifecycle.stats.postsByFax[key] ?? 0) + 1;
    const injected = options.failNextPosts.shift();
    if (injected !== undefined) {
      ctx.status = injected;
      if (injected === 429) {
        ctx.set('retry-after', String(options.retryAfterSeconds));
        ctx.set('x-ratelimit-reset', String(options.retryAfterSeconds));
        ctx.body = errorBody('tooManyRequests', 'You have exceeded the maximum number of allowed requests.');
      } else ctx.body = errorBody('unexpected', 'Injected failure.');
      return;
    }
    const invalid = validateSendFax(body);
    if (invalid) {
      ctx.status = 422;
      ctx.body = invalid;
      return;
    }
    if (options.gatewayTimeouts > 0) {
      // The gateway gives up at once; behind it the fax is still being created.
      options.gatewayTimeouts--;
      const create = () => lifecycle.accept(body);
      if (options.createDelayMs > 0) setTimeout(create, options.createDelayMs).unref();
      else create();
      ctx.status = 504;
      ctx.body = errorBody('unavailable', 'Gateway timeout.');
      return;
    }
    if (options.createDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, options.createDelayMs));
    const fax = lifecycle.accept(body);
    if (options.postLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, options.postLatencyMs));
    ctx.status = 202;
    ctx.body = { data: fax };
  });

  api.get('/faxes', (ctx) => {
    lifecycle.stats.lists++;
    const q = ctx.query as Record<string, string | undefined>;
    const size = Math.min(Number(q['page[size]'] ?? 20) || 20, 250);
    const number = Math.max(Number(q['page[number]'] ?? 1) || 1, 1);
    // Times, compared as instants: `2026-11-27T09:32:29Z` and `...29.000000Z` are the same moment.
    const bounds: Record<string, number> = {};
    for (const op of ['gt', 'gte', 'lt', 'lte']) {
      const parameter = `filter[created_at][${op}]`;
      const value = q[parameter];
      if (value === undefined) continue;
      const at = Date.parse(value);
      if (Number.isNaN(at)) {
        ctx.status = 422;
        ctx.body = errorBody('invalidValue', `${parameter} must be a date-time`, undefined, parameter);
        return;
      }
      bounds[op] = at;
    }
    const within = (created: number) =>
      (bounds.gt === undefined || created > bounds.gt) &&
      (bounds.gte === undefined || created >= bounds.gte) &&
      (bounds.lt === undefined || created < bounds.lt) &&
      (bounds.lte === undefined || created <= bounds.lte);
    const list = [...lifecycle.faxes.values()].filter(
      (fax) =>
        (!q['filter[to][eq]'] || fax.to === q['filter[to][eq]']) &&
        (!q['filter[from][eq]'] || fax.from === q['filter[from][eq]']) &&
        (!q['filter[direction][eq]'] || fax.direction === q['filter[direction][eq]']) &&
        within(Date.parse(fax.created_at)),
    );
    ctx.body = {
      data: list.slice((number - 1) * size, number * size),
      meta: {
        page_number: number,
        page_size: size,
        total_pages: Math.max(1, Math.ceil(list.length / size)),
        total_results: list.length,
      },
    };
  });

  const findFax = (ctx: Koa.Context): SimFax | undefined => {
    const fax = lifecycle.faxes.get(String(ctx.params.id));
    if (!fax) {
      ctx.status = 404;
      ctx.body = errorBody('notFound', 'The requested resource or URL could not be found.');
    }
    return fax;
  };

  api.get('/faxes/:id', (ctx) => {
    const fax = findFax(ctx);
    if (fax) ctx.body = { data: fax };
  });

  api.delete('/faxes/:id', (ctx) => {
    const fax = findFax(ctx);
    if (!fax) return;
    lifecycle.faxes.delete(fax.id);
    ctx.status = 204;
  });

  api.post('/faxes/:id/actions/cancel', (ctx) => {
    const fax = findFax(ctx);
    if (!fax) return;
    if (!lifecycle.cancel(fax)) {
      ctx.status = 422;
      ctx.body = errorBody('invalidValue', `A fax in status ${fax.status} cannot be cancelled.`);
      return;
    }
    ctx.status = 202;
    ctx.body = { data: { result: 'ok' } };
  });

  api.post('/faxes/:id/actions/refresh', (ctx) => {
    const fax = findFax(ctx);
    if (!fax) return;
    if (fax.direction !== 'inbound' || fax.media_url === undefined) {
      ctx.status = 422;
      ctx.body = errorBody('invalidValue', 'Only a received inbound fax has a media link to refresh.');
      return;
    }
    lifecycle.stats.mediaRefreshes++;
    lifecycle.refreshMedia(fax, `${ctx.protocol}://${ctx.host}`);
    ctx.body = { data: { result: 'ok' } };
  });

  // Inbound documents, at links that work for `mediaLinkMs` (like Telnyx's pre-signed storage links).
  app.use(async (ctx, next) => {
    const match = /^\/media\/([0-9a-f-]{36})\.pdf$/.exec(ctx.path);
    if (!match || ctx.method !== 'GET') return next();
    const pdf = lifecycle.media(match[1] as string, String(ctx.query.token ?? ''));
    if (!pdf) {
      ctx.status = 403;
      ctx.type = 'application/xml';
      ctx.body = '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>';
      return;
    }
    ctx.type = 'application/pdf';
    ctx.body = pdf;
  });

  control.post('/inbound', async (ctx) => {
    const body = (await parseBody.json(ctx)) as Record<string, unknown>;
    if (typeof body.from !== 'string' || typeof body.to !== 'string') {
      ctx.status = 422;
      ctx.body = { error: 'from and to are required' };
      return;
    }
    const fax = lifecycle.receive(
      {
        from: body.from,
        to: body.to,
        ...(typeof body.connection_id === 'string' ? { connection_id: body.connection_id } : {}),
        ...(typeof body.pages === 'number' ? { pages: body.pages } : {}),
      },
      `${ctx.protocol}://${ctx.host}`,
    );
    ctx.status = 201;
    ctx.body = { data: fax };
  });

  control.get('/stats', (ctx) => {
    ctx.body = lifecycle.stats;
  });
  control.get('/public-key', (ctx) => {
    ctx.body = { public_key: signer.publicKey };
  });
  control.put('/config', async (ctx) => {
    const patch = await parseBody.json(ctx);
    const parsed = simulatorOptionsSchema.partial().safeParse(patch);
    if (!parsed.success) {
      ctx.status = 422;
      ctx.body = { error: parsed.error.message };
      return;
    }
    options = simulatorOptionsSchema.parse({ ...options, ...parsed.data });
    ctx.body = options;
  });

  app.use(api.routes()).use(api.allowedMethods()).use(control.routes()).use(control.allowedMethods());

  return {
    app,
    publicKey: signer.publicKey,
    lifecycle,
    signerHeaders: (body, timestampSeconds) => signer.headers(body, timestampSeconds),
    options: () => options,
    configure(patch) {
      options = simulatorOptionsSchema.parse({ ...options, ...patch });
    },
    close: () => lifecycle.close(),
  };
}

/** Telnyx's checks on a send request: its documented fields and rules (shared/fax-request.ts). */
function validateSendFax(body: Record<string, unknown>): TelnyxErrorBody | undefined {
  const parsed = parseTelnyxSendFax(body);
  return parsed.ok ? undefined : fieldErrors(parsed.problems);
}

/**
 * A send request's fields, from JSON, a form (`--data-urlencode`, as in Telnyx's guide) or multipart
 * (`SendFaxMultipartRequest`: the document uploaded as `contents`, which the SDK sends when given a
 * file). Form and multipart values are strings: the boolean and integer fields are converted.
 */
async function readSendFax(ctx: Koa.Context): Promise<Record<string, unknown>> {
  if (ctx.is('multipart/form-data')) {
    const raw = await getRawBody(ctx.req, { limit: MAX_CONTENTS_BYTES + 2 ** 20 });
    const form = await new Request('http://simulator/v2/faxes', {
      method: 'POST',
      headers: { 'content-type': ctx.get('content-type') },
      body: raw,
    }).formData();
    const fields: Record<string, unknown> = {};
    for (const [name, value] of form) {
      fields[name] =
        typeof value === 'string' ? value : { name: value.name, type: value.type, size: value.size };
    }
    return coerceFormFields(fields);
  }
  if (ctx.is('application/x-www-form-urlencoded')) return coerceFormFields(await parseBody.form(ctx));
  const body: unknown = await parseBody.json(ctx, { strict: true });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object');
  return body as Record<string, unknown>;
}
