import { decodeClientState } from '../shared/client-state.ts';
import type { TelnyxClient, TelnyxFax } from '../shared/telnyx-client.ts';
import type { RateLimiter } from './rate-limiter.ts';

export interface FindDeps {
  readonly telnyx: TelnyxClient;
  readonly limiter: RateLimiter;
}

export interface Submission {
  readonly faxId: string;
  readonly attempt: number;
  readonly to: string;
  /** When the earlier run began submitting (ms). */
  readonly since: number;
}

/** Telnyx's clock and ours may differ; look this far before our mark. */
const CLOCK_MARGIN_MS = 5 * 60_000;
const PAGE_SIZE = 100;
const MAX_PAGES = 20;

/**
 * `POST /v2/faxes` has no idempotency key: after a run of an attempt was interrupted (a crash, a
 * timeout, a 5xx) Telnyx may or may not have the fax. Before sending again, find it: the faxes to the
 * same number since the attempt began, matched by our id and attempt in their `client_state`.
 * Resolves to the fax Telnyx has, or undefined when it has none; throws when Telnyx cannot be asked
 * (then nothing may be sent).
 */
export async function findEarlierSubmission(
  deps: FindDeps,
  submission: Submission,
): Promise<TelnyxFax | undefined> {
  const createdAtGte = new Date(submission.since - CLOCK_MARGIN_MS).toISOString();
  for (let pageNumber = 1; pageNumber <= MAX_PAGES; pageNumber++) {
    await deps.limiter.take();
    const { faxes, totalPages } = await deps.telnyx.listFaxes({
      to: submission.to,
      createdAtGte,
      pageNumber,
      pageSize: PAGE_SIZE,
    });
    const match = faxes.find((fax) => {
      const ours = decodeClientState(fax.client_state);
      return ours?.faxId === submission.faxId && ours.attempt === submission.attempt;
    });
    if (match) return match;
    if (pageNumber >= totalPages) return undefined;
  }
  throw new Error(
    `more than ${MAX_PAGES * PAGE_SIZE} faxes to ${submission.to} since ${createdAtGte}: cannot tell`,
  );
}
