import type { JobsOptions } from 'bullmq';

/** A received fax whose document is to be saved: what the webhook service queues for the workers. */
export interface InboundDocumentJob {
  readonly telnyxFaxId: string;
  /** The link in the webhook; it works for about 10 minutes, then the worker asks Telnyx for a new one. */
  readonly mediaUrl: string;
  readonly from: string;
  readonly to: string;
  readonly pageCount?: number;
}

export const INBOUND_JOB_NAME = 'save-document';

/** Tries to save one document; with the doubling backoff from 5 s they span about 20 minutes. */
export const INBOUND_ATTEMPTS = 8;

/**
 * One job per received fax (its Telnyx id), so a webhook Telnyx sends twice, or as both
 * `fax.received` and `fax.delivered`, saves the document once. Finished jobs are kept a week: longer
 * than Telnyx retries a webhook.
 */
export function inboundJobOptions(job: InboundDocumentJob, backoffMs: number): JobsOptions {
  return {
    jobId: `inbound-${job.telnyxFaxId}`,
    attempts: INBOUND_ATTEMPTS,
    backoff: { type: 'exponential', delay: Math.max(1, Math.round(backoffMs)) },
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}
