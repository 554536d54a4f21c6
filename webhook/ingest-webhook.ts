import { z } from 'zod';
import { decodeClientState } from '../shared/client-state.ts';
import { type ApplyResult, applyEvent, type EventSink, type FaxEvent } from '../shared/events.ts';
import type { InboundDocumentJob } from '../shared/inbound.ts';
import { statusForTelnyxEvent } from '../shared/status.ts';

/**
 * Telnyx's webhook envelope; the payload is kept whole and published as it came. Lenient where a
 * signed webhook could plausibly differ (a null payload or meta, a numeric id): refusing one would only
 * make Telnyx send it again, to the same answer.
 */
const webhookSchema = z.object({
  data: z.object({
    event_type: z.string().min(1).max(100),
    id: z.union([z.string().min(1).max(100), z.number().transform(String)]),
    occurred_at: z
      .string()
      .max(64)
      .nullish()
      .transform((value) => value ?? undefined),
    record_type: z.string().nullish(),
    payload: z
      .record(z.string(), z.unknown())
      .nullish()
      .transform((value) => value ?? {}),
  }),
  meta: z.record(z.string(), z.unknown()).nullish(),
});

export type TelnyxWebhook = z.infer<typeof webhookSchema>;

export class WebhookPayloadError extends Error {
  readonly code = 'WEBHOOK_INVALID';
}

export function parseWebhook(rawBody: Buffer): TelnyxWebhook {
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString('utf8'));
  } catch {
    throw new WebhookPayloadError('body is not JSON');
  }
  const parsed = webhookSchema.safeParse(json);
  if (!parsed.success) {
    throw new WebhookPayloadError(`not a Telnyx webhook: ${parsed.error.issues[0]?.path.join('.')}`);
  }
  return parsed.data;
}

const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * Turns a verified webhook into a fax event and records it. The fax is found by the pipeline state in
 * `client_state` (present even before the worker has stored the Telnyx id), else by the Telnyx fax id.
 */
export async function ingestWebhook(sink: EventSink, webhook: TelnyxWebhook): Promise<ApplyResult> {
  const { data } = webhook;
  const payload = { ...data.payload };
  const telnyxFaxId = str(payload.fax_id);
  const direction = payload.direction === 'inbound' ? 'inbound' : 'outbound';
  const ours = decodeClientState(payload.client_state);
  let faxId = ours?.faxId;
  if (faxId === undefined && telnyxFaxId !== undefined && direction === 'outbound') {
    faxId = (await sink.redis.get(sink.keys.telnyxFax(telnyxFaxId))) ?? undefined;
  }
  if (ours) {
    // Consumers see the caller's own client_state, never our wrapper.
    if (ours.callerState === undefined) delete payload.client_state;
    else payload.client_state = ours.callerState;
  }
  const event: FaxEvent = {
    eventId: data.id,
    eventType: data.event_type,
    faxId,
    status: faxId === undefined ? undefined : statusForTelnyxEvent(data.event_type, direction),
    occurredAt: data.occurred_at ?? new Date().toISOString(),
    direction,
    payload,
    dedupe: true,
    ...(ours ? { attempt: ours.attempt } : {}),
    ...(telnyxFaxId ? { telnyxFaxId } : {}),
    ...(str(payload.failure_reason) ? { failureReason: str(payload.failure_reason) as string } : {}),
    ...(!ours && str(payload.client_state) ? { clientState: str(payload.client_state) as string } : {}),
  };
  return applyEvent(sink, event);
}

/**
 * The document a webhook announces: `fax.received`, or `fax.delivered` with direction `inbound` (some
 * accounts get that instead), with a `media_url`. Undefined for every other webhook.
 */
export function inboundDocument(webhook: TelnyxWebhook): InboundDocumentJob | undefined {
  const { event_type: type, payload } = webhook.data;
  const received = type === 'fax.received' || (type === 'fax.delivered' && payload.direction === 'inbound');
  if (!received || typeof payload.media_url !== 'string' || typeof payload.fax_id !== 'string')
    return undefined;
  return {
    telnyxFaxId: payload.fax_id,
    mediaUrl: payload.media_url,
    from: typeof payload.from === 'string' ? payload.from : '',
    to: typeof payload.to === 'string' ? payload.to : '',
    ...(typeof payload.page_count === 'number' ? { pageCount: payload.page_count } : {}),
  };
}
