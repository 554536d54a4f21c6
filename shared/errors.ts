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

/** Redis (or another dependency) cannot be reached: nothing was stored, try again. */
export class ServiceUnavailableError extends Error {
  readonly code = 'SERVICE_UNAVAILABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
