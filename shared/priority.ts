/** How urgent a fax is: `high` goes first when channels are scarce, `bulk` last. */
export const FAX_PRIORITIES = ['high', 'normal', 'bulk'] as const;
export type FaxPriority = (typeof FAX_PRIORITIES)[number];

/**
 * In a line for a channel a fax is ordered as if it had arrived this much later: urgent faxes go
 * first, yet a bulk fax that has waited ten minutes goes before a high one that just came.
 */
export const PRIORITY_DELAY_MS: Readonly<Record<FaxPriority, number>> = {
  high: 0,
  normal: 2 * 60_000,
  bulk: 10 * 60_000,
};
