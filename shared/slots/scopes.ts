/**
 * The scopes a fax takes a channel slot in, all at once: its connection, that connection's outbound
 * profile (when one is assigned), the whole account, and its destination number.
 */
export type ScopeKind = 'connection' | 'profile' | 'account' | 'destination';

/** Telnyx's failure reasons for a call over one of its channel limits, and the scope each names. */
const CAPACITY_FAILURES: Readonly<Record<string, ScopeKind>> = {
  connection_channel_limit_exceeded: 'connection',
  outbound_profile_channel_limit_exceeded: 'profile',
  user_channel_limit_exceeded: 'account',
};

/** The scope a channel-limit failure names; undefined for every other failure reason. */
export function capacityScopeKind(failureReason: string | undefined): ScopeKind | undefined {
  return failureReason === undefined ? undefined : CAPACITY_FAILURES[failureReason];
}
