/** The p-th percentile (0–100) of the values, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/**
 * The time-weighted mean of a step function given as [time, value] changes (sorted by time), over
 * [from, to].
 */
export function timeWeightedMean(changes: readonly [number, number][], from: number, to: number): number {
  let area = 0;
  let value = 0;
  let at = from;
  for (const [time, next] of changes) {
    if (time <= from) {
      value = next;
      continue;
    }
    if (time >= to) break;
    area += value * (time - at);
    at = time;
    value = next;
  }
  area += value * (to - at);
  return area / (to - from);
}

/**
 * Pairs each release with the first send after it not already paired, and returns the waits: in a
 * backlog every freed channel is followed by one send.
 */
export function releaseToSend(releases: readonly number[], sends: readonly number[]): number[] {
  const waits: number[] = [];
  const sorted = [...sends].sort((a, b) => a - b);
  let next = 0;
  for (const release of [...releases].sort((a, b) => a - b)) {
    while (next < sorted.length && (sorted[next] as number) < release) next++;
    if (next >= sorted.length) break;
    waits.push((sorted[next] as number) - release);
    next++;
  }
  return waits;
}
