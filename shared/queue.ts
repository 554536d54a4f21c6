import type { JobsOptions } from 'bullmq';

/** What a fax job carries: our id and the attempt it sends; the request lives in the fax record. */
export interface FaxJobData {
  readonly faxId: string;
  /** Left out for the first attempt. */
  readonly attempt?: number;
}

/** One job per attempt of a fax: the first is the fax id itself, so a fax is queued at most once. */
export function faxJobId(faxId: string, attempt = 1): string {
  return attempt <= 1 ? faxId : `${faxId}-${attempt}`;
}

/** The attempt a job id of {@link faxJobId} sends for that fax. */
export function attemptOfJob(faxId: string, jobId: string): number {
  return jobId === faxId ? 1 : Number(jobId.slice(faxId.length + 1));
}

export const FAX_JOB_NAME = 'send-fax';

/** Job options for every fax: the job id is the fax id, so a fax is queued at most once. */
/**
 * Every job has the same BullMQ priority: strict priorities there would starve bulk faxes whenever
 * workers are busy. A fax's priority orders the lines for channels instead (shared/priority.ts).
 */
export function faxJobOptions(jobId: string, submitAttempts: number, backoffMs = 1000): JobsOptions {
  return {
    jobId,
    attempts: submitAttempts,
    backoff: { type: 'exponential', delay: Math.max(1, Math.round(backoffMs)) },
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}
