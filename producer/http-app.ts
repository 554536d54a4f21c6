import Router from '@koa/router';
import parseBody from 'co-body';
import Koa from 'koa';
import { bearerMatches } from '../shared/bearer.ts';
import {
  BatchIncompleteError,
  FaxCancelError,
  FaxNotFoundError,
  FaxValidationError,
  IdempotencyKeyError,
  ServiceUnavailableError,
} from '../shared/errors.ts';
import { coerceFormFields } from '../shared/fax-request.ts';
import type { Logger } from '../shared/logger.ts';
import { type OpsDeps, opsRoutes } from '../shared/ops-routes.ts';
import { errorBody, fieldErrors } from '../shared/telnyx-errors.ts';
import { faxResource, queuedFaxResource } from './fax-resource.ts';
import type { Producer } from './producer.ts';

export interface ProducerAppDeps {
  readonly producer: Producer;
  readonly logger: Logger;
  /** When set, every request needs `Authorization: Bearer <apiToken>`. */
  readonly apiToken?: string | undefined;
  readonly bodyLimit?: string;
  /** `/healthz`, `/readyz` and `/metrics` (probes without the token). */
  readonly ops?: OpsDeps;
  /** The queue dashboard (producer/dashboard.ts), which checks the token itself. */
  readonly dashboard?: Koa.Middleware;
}

/**
 * The producer's HTTP API: Telnyx's own `/v2/faxes` shape, so a client written for Telnyx (the
 * official SDK, Telnyx's curl examples) queues through the pipeline unchanged.
 */
export function createProducerApp(deps: ProducerAppDeps): Koa {
  const app = new Koa();
  const router = new Router({ prefix: '/v2' });
  const limit = deps.bodyLimit ?? '1mb';

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const [status, body] = toHttpError(error);
      if (status >= 500) deps.logger.error({ err: error, path: ctx.path }, 'request failed');
      ctx.status = status;
      ctx.body = body;
    }
  });

  if (deps.ops) app.use(opsRoutes(deps.ops));
  if (deps.dashboard) app.use(deps.dashboard);

  app.use(async (ctx, next) => {
    if (deps.apiToken !== undefined && !bearerMatches(ctx.get('authorization'), deps.apiToken)) {
      ctx.status = 401;
      ctx.body = errorBody('authenticationFailed', 'Send Authorization: Bearer <FAX_API_TOKEN>.');
      return;
    }
    await next();
  });

  router.post('/faxes', async (ctx) => {
    const body = await readFaxBody(ctx, limit);
    // A header present but empty is a malformed key, not no key.
    const key = ctx.headers['idempotency-key'];
    const idempotencyKey = Array.isArray(key) ? key.join(',') : key;
    const options = idempotencyKey === undefined ? {} : { idempotencyKey };
    if (Array.isArray(body.to)) {
      const batch = await deps.producer.queueBatch(body, options);
      ctx.status = 202;
      if (batch.replayed) ctx.set('Idempotent-Replayed', 'true');
      ctx.body = {
        data: {
          record_type: 'fax_batch',
          id: batch.batchId,
          faxes: await Promise.all(
            batch.faxes.map(async (fax) =>
              // A fax stored by an earlier request with the same key: as it is now.
              fax.replayed
                ? faxResource(await deps.producer.get(fax.id))
                : queuedFaxResource(fax.id, fax.request, fax.queuedAt),
            ),
          ),
        },
      };
      return;
    }
    const queued = await deps.producer.queue(body, options);
    ctx.status = 202;
    if (queued.replayed) {
      // The fax this key queued before, as it is now.
      ctx.set('Idempotent-Replayed', 'true');
      ctx.body = { data: faxResource(await deps.producer.get(queued.id)) };
      return;
    }
    ctx.body = { data: queuedFaxResource(queued.id, queued.request, queued.queuedAt) };
  });

  // Telnyx's own path for a cancel.
  router.post('/faxes/:id/actions/cancel', async (ctx) => {
    await deps.producer.cancel(ctx.params.id ?? '');
    ctx.status = 202;
    ctx.body = { data: { result: 'ok' } };
  });

  router.get('/batches/:id', async (ctx) => {
    const batch = await deps.producer.getBatch(ctx.params.id ?? '');
    ctx.body = {
      data: {
        record_type: 'fax_batch',
        id: batch.id,
        total: batch.faxIds.length,
        counts: batch.counts,
        fax_ids: batch.faxIds,
      },
    };
  });

  router.get('/faxes/:id', async (ctx) => {
    const record = await deps.producer.get(ctx.params.id ?? '');
    ctx.body = { data: faxResource(record) };
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use((ctx) => {
    ctx.status = 404;
    ctx.body = errorBody('notFound', `No route for ${ctx.method} ${ctx.path}.`);
  });
  return app;
}

async function readFaxBody(ctx: Koa.Context, limit: string): Promise<Record<string, unknown>> {
  if (ctx.is('application/json')) {
    const body: unknown = await parseBody.json(ctx, { limit, strict: true });
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BodyError(422, 'badRequest', 'The request body must be a JSON object.');
    }
    return body as Record<string, unknown>;
  }
  if (ctx.is('application/x-www-form-urlencoded')) {
    const body = (await parseBody.form(ctx, { limit })) as Record<string, unknown>;
    for (const [field, value] of Object.entries(body)) {
      // tags[key]=value pairs arrive as one object; the schema checks its shape.
      if (field === 'tags' && typeof value === 'object' && value !== null && !Array.isArray(value)) continue;
      if (typeof value !== 'string') {
        throw new BodyError(
          422,
          'invalidValue',
          `${field} must be given once, as a plain value.`,
          `/${field}`,
        );
      }
    }
    return coerceFormFields(body);
  }
  throw new BodyError(
    415,
    'unsupportedMediaType',
    'Send application/json or application/x-www-form-urlencoded (multipart uploads are not supported: use media_url).',
  );
}

class BodyError extends Error {
  readonly status: number;
  readonly kind: Parameters<typeof errorBody>[0];
  readonly pointer: string | undefined;
  constructor(status: number, kind: Parameters<typeof errorBody>[0], detail: string, pointer?: string) {
    super(detail);
    this.status = status;
    this.kind = kind;
    this.pointer = pointer;
  }
}

/** Every error the API can answer, in one place; a 5xx never carries internals. */
function toHttpError(error: unknown): [number, unknown] {
  if (error instanceof FaxValidationError) return [422, fieldErrors(error.problems)];
  if (error instanceof FaxNotFoundError)
    return [404, errorBody('notFound', `No fax with id ${error.faxId}.`)];
  if (error instanceof BodyError) return [error.status, errorBody(error.kind, error.message, error.pointer)];
  if (error instanceof FaxCancelError) {
    const status = error.reason === 'busy' ? 409 : 422;
    return [status, errorBody(status === 409 ? 'conflict' : 'invalidValue', error.message)];
  }
  if (error instanceof IdempotencyKeyError) {
    const status = error.reason === 'in-progress' ? 409 : 422;
    return [
      status,
      errorBody(status === 409 ? 'conflict' : 'invalidValue', error.message, undefined, 'Idempotency-Key'),
    ];
  }
  if (error instanceof BatchIncompleteError) return [503, errorBody('unavailable', error.message)];
  if (error instanceof ServiceUnavailableError) {
    return [503, errorBody('unavailable', 'The fax queue is unavailable; nothing was queued. Try again.')];
  }
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // co-body: malformed JSON (400), too large (413), bad charset (415).
    const detail =
      status === 413 ? 'The request body is too large.' : 'The request body could not be parsed.';
    return [status, errorBody(status === 413 ? 'payloadTooLarge' : 'badRequest', detail)];
  }
  return [500, errorBody('unexpected', 'An unexpected error occurred.')];
}
