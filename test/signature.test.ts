import test from 'ava';
import { TelnyxWebhook } from 'telnyx/lib/webhooks';
import { createWebhookSigner } from '../simulator/signer.ts';
import {
  TIMESTAMP_TOLERANCE_SECONDS,
  telnyxPublicKey,
  verifyTelnyxSignature,
  WebhookSignatureError,
} from '../webhook/verify-signature.ts';

const signer = createWebhookSigner();
const key = telnyxPublicKey(signer.publicKey);
const body = JSON.stringify({ data: { event_type: 'fax.delivered', id: 'e1', payload: { fax_id: 'f1' } } });
const now = 1_800_000_000;

/** A request as the webhook service sees it: raw bytes plus the two signature headers. */
const signedRequest = (raw: string, headers: Record<string, string>) => ({
  rawBody: Buffer.from(raw),
  signature: headers['telnyx-signature-ed25519'],
  timestamp: headers['telnyx-timestamp'],
});

function problem(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof WebhookSignatureError ? error.code : 'other';
  }
}

test('a correctly signed webhook passes', (t) => {
  const headers = signer.headers(body, now);
  t.notThrows(() => verifyTelnyxSignature(signedRequest(body, headers), key, now));
});

test('the official telnyx SDK verifier accepts what our signer signs, and we accept the same payload', async (t) => {
  const nowSeconds = Math.floor(Date.now() / 1000);
  const headers = signer.headers(body, nowSeconds);
  await t.notThrowsAsync(new TelnyxWebhook(signer.publicKey).verify(body, headers));
  t.notThrows(() => verifyTelnyxSignature(signedRequest(body, headers), key, nowSeconds));
  const tampered = body.replace('delivered', 'failed');
  await t.throwsAsync(new TelnyxWebhook(signer.publicKey).verify(tampered, headers));
});

test('a changed body, a wrong key or a re-serialised body fails', (t) => {
  const headers = signer.headers(body, now);
  const request = (raw: string) => signedRequest(raw, headers);
  t.is(
    problem(() => verifyTelnyxSignature(request(`${body} `), key, now)),
    'bad_signature',
  );
  t.is(
    problem(() => verifyTelnyxSignature(request(JSON.stringify(JSON.parse(body), null, 1)), key, now)),
    'bad_signature',
  );
  const other = telnyxPublicKey(createWebhookSigner().publicKey);
  t.is(
    problem(() => verifyTelnyxSignature(request(body), other, now)),
    'bad_signature',
  );
});

test('missing headers and timestamps outside ±300 s are refused', (t) => {
  const headers = signer.headers(body, now);
  const raw = Buffer.from(body);
  t.is(
    problem(() =>
      verifyTelnyxSignature({ rawBody: raw, signature: undefined, timestamp: `${now}` }, key, now),
    ),
    'missing_signature',
  );
  t.is(
    problem(() =>
      verifyTelnyxSignature(
        { rawBody: raw, signature: headers['telnyx-signature-ed25519'], timestamp: undefined },
        key,
        now,
      ),
    ),
    'missing_timestamp',
  );
  const at = (skew: number) =>
    problem(() =>
      verifyTelnyxSignature(
        {
          rawBody: raw,
          signature: headers['telnyx-signature-ed25519'],
          timestamp: headers['telnyx-timestamp'],
        },
        key,
        now + skew,
      ),
    );
  t.is(at(TIMESTAMP_TOLERANCE_SECONDS), undefined);
  t.is(at(TIMESTAMP_TOLERANCE_SECONDS + 1), 'stale_timestamp');
  t.is(at(-TIMESTAMP_TOLERANCE_SECONDS - 1), 'stale_timestamp');
});

test('a public key that is not 32 bytes is refused at start-up', (t) => {
  t.throws(() => telnyxPublicKey(Buffer.from('short').toString('base64')), { message: /32 bytes/ });
});
