import { type Job, UnrecoverableError } from 'bullmq';
import { encodeClientState } from '../shared/client-state.ts';
import { applyEvent, type EventSink, newEventId } from '../shared/events.ts';
import { readFaxToSend } from '../shared/fax-record.ts';
import type { Logger } from '../shared/logger.ts';
import type { FaxJobData } from '../shared/queue.ts';
import { OWN_EVENTS } from '../shared/status.ts';
import type { TelnyxClient } from '../shared/telnyx-client.ts';

export interface DispatchDeps extends EventSink {
  readonly telnyx: TelnyxClient;
  readonly logger: Logger;
  /** Sent to Telnyx as `webhook_url`, so its webhooks reach our webhook service. */
  readonly webhookUrl?: string | undefined;
}

/** A submission that may succeed on another try (BullMQ retries it with backoff). */
export class RetryableSubmitError extends Error {
  readonly code = 'SUBMIT_RETRYABLE';
}

/**
 * Sends one queued fax to Telnyx and records the outcome. Only a fax still `queued` is sent: a job
 * that runs again after its fax was accepted does nothing.
 */
export async function dispatchFax(deps: DispatchDeps, job: Job<FaxJobData>): Promise<void> {
  const { faxId } = job.data;
  const record = await readFaxToSend(deps.redis, deps.keys, faxId);
  if (!record) throw new UnrecoverableError(`no record for fax ${faxId}`);
  const log = deps.logger.child({ faxId, attempt: record.attempt });
  if (record.status !== 'queued') {
    log.info({ status: record.status }, 'fax already dispatched; nothing to do');
    return;
  }

  const { client_state: callerState, webhook_url: callerWebhook, ...request } = record.request;
  const webhookUrl = deps.webhookUrl ?? callerWebhook;
  const outcome = await deps.telnyx.submitFax({
    ...request,
    client_state: encodeClientState({ faxId, attempt: record.attempt, callerState }),
    ...(webhookUrl ? { webhook_url: webhookUrl } : {}),
  });
  const event = {
    eventId: newEventId(),
    faxId,
    attempt: record.attempt,
    occurredAt: new Date().toISOString(),
    direction: 'outbound' as const,
    dedupe: false,
  };

  switch (outcome.kind) {
    case 'accepted':
      await applyEvent(deps, {
        ...event,
        eventType: OWN_EVENTS.submitted,
        status: 'submitted',
        telnyxFaxId: outcome.fax.id,
        payload: outcome.fax,
      });
      log.info({ telnyxFaxId: outcome.fax.id }, 'fax accepted by Telnyx');
      return;
    case 'rejected':
      await applyEvent(deps, {
        ...event,
        eventType: OWN_EVENTS.failed,
        status: 'failed',
        failureReason: 'rejected',
        detail: `Telnyx answered ${outcome.status}: ${outcome.detail}`,
        payload: { http_status: outcome.status },
      });
      log.warn({ httpStatus: outcome.status, detail: outcome.detail }, 'fax rejected by Telnyx');
      return;
    case 'retryable': {
      const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      log.warn({ httpStatus: outcome.status, detail: outcome.detail, lastTry }, 'fax submission failed');
      if (!lastTry) throw new RetryableSubmitError(outcome.detail);
      await applyEvent(deps, {
        ...event,
        eventType: OWN_EVENTS.failed,
        status: 'failed',
        failureReason: 'submission_failed',
        detail: outcome.detail,
        payload: { http_status: outcome.status ?? null },
      });
      return;
    }
  }
}
