import Router from '@koa/router';
import parseBody from 'co-body';
import Koa from 'koa';
import { bearerMatches } from '../shared/bearer.ts';
import { decodeClientState } from '../shared/client-state.ts';
import { errorBody, type TelnyxErrorBody } from '../shared/telnyx-errors.ts';
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

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const e164 = /^\+[1-9]\d{1,14}$/;

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
      body = ctx.is('application/x-www-form-urlencoded')
        ? await parseBody.form(ctx)
        : await parseBody.json(ctx, { strict: true });
    } catch {
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
    const after = (op: string) => q[`filter[created_at][${op}]`];
    const list = [...lifecycle.faxes.values()].filter(
      (fax) =>
        (!q['filter[to][eq]'] || fax.to === q['filter[to][eq]']) &&
        (!q['filter[from][eq]'] || fax.from === q['filter[from][eq]']) &&
        (!q['filter[direction][eq]'] || fax.direction === q['filter[direction][eq]']) &&
        (!after('gte') || fax.created_at >= (after('gte') as string)) &&
        (!after('gt') || fax.created_at > (after('gt') as string)) &&
        (!after('lte') || fax.created_at <= (after('lte') as string)) &&
        (!after('lt') || fax.created_at < (after('lt') as string)),
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

/** Telnyx's checks on a send request, as far as they are documented. */
function validateSendFax(body: Record<string, unknown>): TelnyxErrorBody | undefined {
  const errors: TelnyxErrorBody['errors'][number][] = [];
  const problem = (pointer: string, detail: string) =>
    errors.push({ code: '10015', title: 'Invalid value', detail, source: { pointer } });
  for (const field of ['connection_id', 'to', 'from']) {
    if (typeof body[field] !== 'string' || body[field] === '') problem(`/${field}`, `${field} is required`);
  }
  if (typeof body.from === 'string' && !e164.test(body.from)) problem('/from', 'from must be E.164');
  if (typeof body.to === 'string' && !e164.test(body.to) && !body.to.startsWith('sip:')) {
    problem('/to', 'to must be E.164 or a SIP URI');
  }
  if (body.media_url === undefined && body.media_name === undefined)
    problem('/media_url', 'media_url is required');
  if (body.media_url !== undefined && body.media_name !== undefined) {
    problem('/media_name', 'media_name and media_url cannot be sent together');
  }
  if (
    body.client_state !== undefined &&
    (typeof body.client_state !== 'string' || !base64.test(body.client_state))
  ) {
    problem('/client_state', 'client_state must be valid base64');
  }
  return errors.length > 0 ? { errors } : undefined;
}
