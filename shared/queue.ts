import type { JobsOptions } from 'bullmq';

/** What a fax job carries: only our id; the request lives in the fax record. */
export interface FaxJobData {
  readonly faxId: string;
}

export const FAX_JOB_NAME = 'send-fax';

/** Job options for every fax: the job id is the fax id, so a fax is queued at most once. */
export function faxJobOptions(faxId: string, submitAttempts: number): JobsOptions {
  return {
    jobId: faxId,
    attempts: submitAttempts,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}
