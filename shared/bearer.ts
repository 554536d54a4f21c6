import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Whether an `Authorization` header carries `Bearer <expected>`. Compared in constant time over
 * fixed-length digests, so neither the token nor its length leaks through timing.
 */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return timingSafeEqual(digest(match?.[1] ?? ''), digest(expected)) && match !== null;
}

/**
 * Like {@link bearerMatches}, and also HTTP Basic with the token as the password (any user name):
 * what a browser can send, for the dashboard and for scrapers configured with basic auth.
 */
export function credentialsMatch(header: string | undefined, expected: string): boolean {
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (basic === null) return bearerMatches(header, expected);
  const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  return timingSafeEqual(digest(password), digest(expected)) && colon >= 0;
}
