import type { KeyObject } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import getRawBody from 'raw-body';
import type { Queue } from 'bullmq';
import type { EventSink } from '../shared/events.ts';
import { INBOUND_JOB_NAME, type InboundDocumentJob, inboundJobOptions } from '../shared/inbound.ts';
import type { Logger } from '../shared/logger.ts';
import type { WebhookOutcome } from '../shared/metrics/fax-metrics.ts';
import { type OpsDeps, opsRoutes } from '../shared/ops-routes.ts';
import type { Handoff } from '../shared/slots/handoff.ts';
import { inboundDocument, ingestWebhook, parseWebhook, WebhookPayloadError } from './ingest-webhook.ts';
import { verifyTelnyxSignature, WebhookSignatureError } from './verify-signature.ts';

export interface WebhookAppDeps {
  readonly sink: EventSink;
  /** Wakes faxes for the slots an event freed and queues faxes sent again. */
  readonly handoff: Handoff;
  readonly logger: Logger;
  readonly publicKey: KeyObject;
  /** Received faxes' documents to save (FAX_INBOUND_DIR set); left out: none are saved. */
  readonly inbound?: { readonly queue: Queue<InboundDocumentJob>; readonly backoffMs: number };
  readonly bodyLimit?: string;
  /** Seconds since the epoch; tests move it. */
  readonly now?: () => number;
  /** `/healthz`, `/readyz`, `/metrics`, and the metrics webhooks are counted in. */
  readonly ops?: OpsDeps;
}

/**
 * `POST /webhooks/telnyx`: verify, deduplicate, record and publish. Answers 2xx only once the event is
 * stored; anything else makes Telnyx retry.
 */
export function createWebhookApp(deps: WebhookAppDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const now = deps.now ?? (() => Date.now() / 1000);
  const count = (outcome: WebhookOutcome) => deps.ops?.metrics.webhook(outcome);

  router.post('/webhooks/telnyx', async (ctx) => {
    let rawBody: Buffer;
    try {
      rawBody = await getRawBody(ctx.req, {
        limit: deps.bodyLimit ?? '256kb',
        length: ctx.get('content-length') || null,
      });
    } catch (error) {
      const status = (error as { status?: number }).status ?? 400;
      ctx.status = status === 413 ? 413 : 400;
      ctx.body = { error: status === 413 ? 'body too large' : 'body could not be read' };
      count('invalid');
      return;
    }
    try {
      verifyTelnyxSignature(
        {
          rawBody,
          signature: ctx.get('telnyx-signature-ed25519') || undefined,
          timestamp: ctx.get('telnyx-timestamp') || undefined,
        },
        deps.publicKey,
        now(),
      );
    } catch (error) {
      if (!(error instanceof WebhookSignatureError)) throw error;
      deps.logger.warn({ reason: error.code }, 'webhook signature rejected');
      ctx.status = 401;
      ctx.body = { error: error.code };
      count('bad_signature');
      return;
    }
    let webhook: ReturnType<typeof parseWebhook>;
    try {
      webhook = parseWebhook(rawBody);
    } catch (error) {
      if (!(error instanceof WebhookPayloadError)) throw error;
      ctx.status = 400;
      ctx.body = { error: error.message };
      count('invalid');
      return;
    }
    try {
      const result = await ingestWebhook(deps.sink, webhook);
      // Queued after the event is stored (so `fax.media.saved` follows `fax.received`), also for a
      // duplicate: a crash in between makes Telnyx retry, and that copy queues it. The job id (the
      // fax's) keeps the document from being saved twice.
      const document = deps.inbound ? inboundDocument(webhook) : undefined;
      if (document && deps.inbound) {
        await deps.inbound.queue.add(
          INBOUND_JOB_NAME,
          document,
          inboundJobOptions(document, deps.inbound.backoffMs),
        );
      }
      deps.logger.info(
        {
          eventId: webhook.data.id,
          eventType: webhook.data.event_type,
          faxId: result.faxId || undefined,
          telnyxFaxId: result.telnyxFaxId || undefined,
          outcome: result.outcome,
          status: result.status,
        },
        'webhook taken in',
      );
      ctx.status = 200;
      ctx.body = { result: result.outcome };
      count(result.outcome === 'duplicate' ? 'duplicate' : 'ok');
      // Stored: the answer is 200 whatever happens next; the slot keeper redoes a handoff lost here.
      await deps.handoff.after(result).catch((error: unknown) => {
        deps.logger.warn(
          { err: error, faxId: result.faxId },
          'handoff after webhook failed; the slot keeper will redo it',
        );
      });
    } catch (error) {
      deps.logger.error({ err: error, eventId: webhook.data.id }, 'webhook not stored; Telnyx will retry');
      ctx.status = 503;
      ctx.body = { error: 'temporarily unavailable' };
      count('unavailable');
    }
  });

  if (deps.ops) app.use(opsRoutes(deps.ops));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
