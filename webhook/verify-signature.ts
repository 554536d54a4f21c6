import { createPublicKey, type KeyObject, verify } from 'node:crypto';

/** How far a webhook's `telnyx-timestamp` may be from our clock (the official SDK allows the same). */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow it.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export type SignatureProblem =
  | 'missing_signature'
  | 'missing_timestamp'
  | 'stale_timestamp'
  | 'bad_signature';

export class WebhookSignatureError extends Error {
  readonly code: SignatureProblem;
  constructor(code: SignatureProblem) {
    super(`webhook rejected: ${code.replace('_', ' ')}`);
    this.code = code;
  }
}

/** The account's public key, as Telnyx's portal shows it (base64 of 32 bytes). */
export function telnyxPublicKey(base64: string): KeyObject {
  const raw = Buffer.from(base64, 'base64');
  if (raw.length !== 32) throw new Error('TELNYX_PUBLIC_KEY must be a base64 Ed25519 public key (32 bytes)');
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export interface SignedRequest {
  readonly rawBody: Buffer;
  readonly signature: string | undefined;
  readonly timestamp: string | undefined;
}

/**
 * Checks Telnyx's Ed25519 signature over `${timestamp}|${raw body}` and the timestamp's age.
 * Pure: the raw bytes, headers, key and clock in; nothing out but an error.
 */
export function verifyTelnyxSignature(request: SignedRequest, key: KeyObject, nowSeconds: number): void {
  if (!request.signature) throw new WebhookSignatureError('missing_signature');
  if (!request.timestamp || !/^\d{1,12}$/.test(request.timestamp)) {
    throw new WebhookSignatureError('missing_timestamp');
  }
  if (Math.abs(nowSeconds - Number(request.timestamp)) > TIMESTAMP_TOLERANCE_SECONDS) {
    throw new WebhookSignatureError('stale_timestamp');
  }
  const signature = Buffer.from(request.signature, 'base64');
  if (signature.length !== 64) throw new WebhookSignatureError('bad_signature');
  const signed = Buffer.concat([Buffer.from(`${request.timestamp}|`), request.rawBody]);
  if (!verify(null, signed, key, signature)) throw new WebhookSignatureError('bad_signature');
}
