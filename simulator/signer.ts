import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

/** Signs webhooks the way Telnyx does: Ed25519 over `${timestamp}|${body}`, base64. */
export interface WebhookSigner {
  /** The public key as Telnyx's portal shows it: base64 of the 32 raw bytes. */
  readonly publicKey: string;
  headers(body: string, timestampSeconds?: number): Record<string, string>;
}

export function createWebhookSigner(): WebhookSigner {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return signerFor(privateKey, publicKey);
}

function signerFor(privateKey: KeyObject, publicKey: KeyObject): WebhookSigner {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return {
    publicKey: der.subarray(der.length - 32).toString('base64'),
    headers(body, timestampSeconds = Math.floor(Date.now() / 1000)) {
      const signature = sign(null, Buffer.from(`${timestampSeconds}|${body}`), privateKey);
      return {
        'content-type': 'application/json',
        'telnyx-timestamp': String(timestampSeconds),
        'telnyx-signature-ed25519': signature.toString('base64'),
      };
    },
  };
}
