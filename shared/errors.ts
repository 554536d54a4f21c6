import type { FieldProblem } from './fax-request.ts';

/** Errors with stable codes; each service turns them into its own answers in one place. */
export class FaxValidationError extends Error {
  readonly code = 'FAX_INVALID';
  readonly problems: readonly FieldProblem[];
  constructor(problems: readonly FieldProblem[]) {
    super(`invalid fax: ${problems.map((p) => p.detail).join('; ')}`);
    this.problems = problems;
  }
}

export class FaxNotFoundError extends Error {
  readonly code = 'FAX_NOT_FOUND';
  readonly faxId: string;
  constructor(faxId: string) {
    super(`no fax with id ${faxId}`);
    this.faxId = faxId;
  }
}

/**
 * An `Idempotency-Key` that cannot be honoured: malformed (`invalid`), used before with a different
 * request (`reused`), or its first request still being stored (`in-progress`: try again shortly).
 */
export class IdempotencyKeyError extends Error {
  readonly code = 'IDEMPOTENCY_KEY';
  readonly reason: 'invalid' | 'reused' | 'in-progress';
  constructor(reason: IdempotencyKeyError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * A fax that cannot be cancelled: it has ended (`finished`), or its POST to Telnyx is under way
 * (`busy`: try again in a moment, it will then be cancelled at Telnyx).
 */
export class FaxCancelError extends Error {
  readonly code = 'FAX_NOT_CANCELLABLE';
  readonly reason: 'finished' | 'busy';
  constructor(reason: FaxCancelError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A batch stored in part before Redis failed: those stored will be sent; do not send them again. */
export class BatchIncompleteError extends Error {
  readonly code = 'BATCH_INCOMPLETE';
  readonly batchId: string;
  readonly stored: number;
  readonly total: number;
  constructor(batchId: string, stored: number, total: number, options?: ErrorOptions) {
    super(
      `Only ${stored} of ${total} faxes of batch ${batchId} were queued (they will be sent: see GET /v2/batches/${batchId}); queue the rest again, not these — or, if the request had an Idempotency-Key, send it again as it was: only the rest is queued.`,
      options,
    );
    this.batchId = batchId;
    this.stored = stored;
    this.total = total;
  }
}

/** Redis (or another dependency) cannot be reached: nothing was stored, try again. */
export class ServiceUnavailableError extends Error {
  readonly code = 'SERVICE_UNAVAILABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
