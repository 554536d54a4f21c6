import type { SendFaxRequest } from '../shared/fax-request.ts';
import type { FaxRecord } from '../shared/fax-record.ts';

/**
 * A fax as the HTTP API shows it: Telnyx's `Fax` shape (so Telnyx clients read it unchanged) with our
 * id, plus what only the pipeline knows: the Telnyx fax id, attempts, failure reason and history.
 */
export function faxResource(record: FaxRecord) {
  return {
    ...requestFields(record.request),
    id: record.id,
    record_type: 'fax' as const,
    direction: 'outbound' as const,
    status: record.status,
    telnyx_fax_id: record.telnyxFaxId ?? null,
    attempts: record.attempt,
    failure_reason: record.failureReason ?? null,
    ...(record.detail ? { failure_detail: record.detail } : {}),
    ...(record.nextAttemptAt
      ? { next_attempt_at: record.nextAttemptAt, last_failure_reason: record.lastFailureReason ?? null }
      : {}),
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    events: record.history,
  };
}

/** The answer to a new fax: its request fields, our id and `queued`. */
export function queuedFaxResource(faxId: string, request: SendFaxRequest, at: Date) {
  return {
    ...requestFields(request),
    id: faxId,
    record_type: 'fax' as const,
    direction: 'outbound' as const,
    status: 'queued' as const,
    telnyx_fax_id: null,
    attempts: 1,
    failure_reason: null,
    created_at: at.toISOString(),
    updated_at: at.toISOString(),
  };
}

function requestFields(request: SendFaxRequest) {
  return { quality: 'high', ...request };
}
