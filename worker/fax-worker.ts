import { Worker } from 'bullmq';
import { FAX_QUEUE } from '../shared/keys.ts';
import type { FaxJobData } from '../shared/queue.ts';
import { type DispatchDeps, dispatchFax } from './dispatch-fax.ts';

export interface FaxWorkerOptions {
  readonly concurrency: number;
  /** A job whose worker stops renewing its lock this long is handed to another worker. */
  readonly lockMs: number;
}

/** A BullMQ worker sending fax jobs; run as many, in as many processes, as wanted. */
export function createFaxWorker(deps: DispatchDeps, options: FaxWorkerOptions): Worker<FaxJobData> {
  const worker = new Worker<FaxJobData>(FAX_QUEUE, (job, token) => dispatchFax(deps, job, token), {
    connection: deps.redis,
    prefix: deps.keys.bullPrefix,
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    // A job redelivered after a crash checks at Telnyx before sending again; let it survive a few.
    maxStalledCount: 5,
  });
  worker.on('error', (error) => deps.logger.error({ err: error }, 'worker error'));
  worker.on('failed', (job, error) => {
    deps.logger.warn(
      { faxId: job?.data.faxId, err: error, attemptsMade: job?.attemptsMade },
      'fax job failed',
    );
  });
  return worker;
}
