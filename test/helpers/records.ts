import type { EventSink } from '../../shared/events.ts';
import { newEventId } from '../../shared/events.ts';
import type { SendFaxRequest } from '../../shared/fax-request.ts';
import { createFaxRecord } from '../../shared/fax-record.ts';

/** Stores a fax as the producer does (record, `fax.enqueued`, outbox entry), without queueing its job. */
export function storeFax(
  sink: EventSink,
  faxId: string,
  request: SendFaxRequest,
  createdAt = new Date(),
): Promise<boolean> {
  return createFaxRecord(
    sink,
    faxId,
    request,
    {
      eventId: newEventId(),
      eventType: 'fax.enqueued',
      faxId,
      status: 'queued',
      occurredAt: new Date().toISOString(),
      direction: 'outbound',
      payload: {},
      dedupe: false,
    },
    createdAt,
  );
}
