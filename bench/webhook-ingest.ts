import { createPublicKey, randomUUID, verify } from 'node:crypto';
import { createProducer } from '../producer/producer.ts';
import { encodeClientState } from '../shared/client-state.ts';
import { applyEvent, newEventId } from '../shared/events.ts';
import { createKeys } from '../shared/keys.ts';
import { connectRedis } from '../shared/redis.ts';
import { slotSettings } from '../shared/slots/settings.ts';
import { acquireSlots } from '../shared/slots/slots.ts';
import { OWN_EVENTS } from '../shared/status.ts';
import { createWebhookSigner } from '../simulator/signer.ts';
import { fire, type LoadRequest } from './http-load.ts';
import { inFlight, type Meter, measureRound, rotated, type Sample } from './measure.ts';
import { benchFax, logger, startWorld } from './world.ts';

export interface WebhookOptions {
  /** Webhooks per round (four per fax). */
  readonly webhooks: number;
  readonly concurrency: number;
  readonly rounds: number;
}

export interface WebhookResult extends WebhookOptions {
  /** `fax start webhook`: signature, parse, dedupe, record and publish, free the slots. */
  readonly ours: Sample;
  /** A bare Koa handler that reads the body and answers 200 (bench/bare-server.ts). */
  readonly bareKoa: Sample;
  /** The same handler checking the Ed25519 signature first: the ceiling ours is held to. */
  readonly bareKoaVerify: Sample;
  /** `crypto.verify` of the same signed webhooks in a loop on one core, nothing else. */
  readonly verifyOnly: Sample;
}

/** The webhooks Telnyx (and the simulator) send for one delivered fax, in order. */
const LIFECYCLE = [
  ['fax.queued', 'queued'],
  ['fax.media.processed', 'media.processed'],
  ['fax.sending.started', 'sending'],
  ['fax.delivered', 'delivered'],
] as const;

/**
 * Webhook ingestion: signed simulator-style webhooks (the four of each fax's delivery, for faxes
 * submitted and holding their channel slots, as a worker leaves them) posted with `concurrency` in
 * flight to our webhook service and to the bare baselines, each in its own process; and the rate of
 * signature checks alone. Each round sends every fax's first webhook before any fax's second, and so
 * on, as Telnyx's come seconds apart.
 */
export async function measureWebhooks(options: WebhookOptions): Promise<WebhookResult> {
  const { concurrency, rounds } = options;
  const faxCount = Math.max(1, Math.round(options.webhooks / LIFECYCLE.length));
  const webhooks = faxCount * LIFECYCLE.length;
  const signer = createWebhookSigner();
  const publicKey = createPublicKey({
    key: Buffer.concat([
      Buffer.from('302a300506032b6570032100', 'hex'),
      Buffer.from(signer.publicKey, 'base64'),
    ]),
    format: 'der',
    type: 'spki',
  });
  // Limits high enough for every fax to hold its slots (account and destination), as in production.
  const limits = { FAX_ACCOUNT_CHANNEL_LIMIT: '1000000', TELNYX_RATE_LIMIT: 'none' };
  const world = await startWorld();
  const redis = connectRedis(world.redis.url);
  try {
    const config = world.config(limits);
    const keys = createKeys(config.env.FAX_KEY_PREFIX, config.env.FAX_STREAM_KEY);
    const slots = slotSettings(config.env, keys.prefix);
    const sink = { redis, keys, slots, streamMaxLen: 1_000_000, retryPolicy: config.retryPolicy };
    const producer = createProducer({ redis, keys, logger, slots });
    let offset = 0;

    /** Faxes as a worker leaves them after a 202: slots held, `fax.submitted` recorded. */
    async function submittedFaxes(): Promise<{ faxId: string; telnyxFaxId: string; to: string }[]> {
      const first = offset;
      offset += faxCount;
      const faxes: { faxId: string; telnyxFaxId: string; to: string }[] = [];
      await inFlight(faxCount, 32, async (i) => {
        const { id, request } = await producer.queue(benchFax(first + i));
        const slot = await acquireSlots(sink, {
          faxId: id,
          jobId: id,
          attempt: 1,
          rateIntervalMs: 0,
          run: 'bench',
        });
        if (slot.kind !== 'held') throw new Error(`bench: fax ${id} did not get its slots (${slot.kind})`);
        const telnyxFaxId = randomUUID();
        await applyEvent(sink, {
          eventId: newEventId(),
          eventType: OWN_EVENTS.submitted,
          faxId: id,
          attempt: 1,
          status: 'submitted',
          telnyxFaxId,
          occurredAt: new Date().toISOString(),
          direction: 'outbound',
          payload: {},
          dedupe: false,
        });
        faxes.push({ faxId: id, telnyxFaxId, to: request.to });
      });
      return faxes;
    }

    /** Every fax's lifecycle webhooks, signed now, phase by phase. */
    function signed(faxes: readonly { faxId: string; telnyxFaxId: string; to: string }[]): LoadRequest[] {
      const requests: LoadRequest[] = [];
      for (const [eventType, status] of LIFECYCLE) {
        for (const fax of faxes) {
          const body = JSON.stringify({
            data: {
              event_type: eventType,
              id: randomUUID(),
              occurred_at: new Date().toISOString(),
              record_type: 'event',
              payload: {
                fax_id: fax.telnyxFaxId,
                connection_id: 'bench',
                direction: 'outbound',
                from: '+19459457421',
                to: fax.to,
                original_media_url: 'https://example.com/a.pdf',
                status,
                user_id: '19a75cea-02c6-4b9a-84fa-c9bc8341feb8',
                client_state: encodeClientState({ faxId: fax.faxId, attempt: 1, callerState: undefined }),
                ...(status === 'delivered' ? { call_duration_secs: 1, page_count: 1 } : {}),
              },
            },
            meta: { attempt: 1, delivered_to: 'bench' },
          });
          requests.push({ path: '/webhooks/telnyx', headers: signer.headers(body), body: Buffer.from(body) });
        }
      }
      return requests;
    }

    const ours = await world.startService('webhook', { ...limits, TELNYX_PUBLIC_KEY: signer.publicKey });
    const bare = await world.startBare('webhook');
    const bareVerify = await world.startBare('webhook-verify', { PUBLIC_KEY: signer.publicKey });
    const meter: Meter = { redis, redisPid: world.redis.process.pid as number };
    const post = (server: { url: string; pid: number }, forOurs: boolean) => async () => {
      await redis.flushall();
      const requests = signed(forOurs ? await submittedFaxes() : fakeFaxes(faxCount));
      return measureRound({ ...meter, pid: () => server.pid }, webhooks, async () => {
        const result = await fire(server.url, requests, concurrency);
        // fax.queued finds the fax already submitted (published only); every other one moves it on.
        const applied = result.bodies.filter((body) => body.includes('"applied"')).length;
        if (forOurs && applied !== webhooks - faxCount) {
          throw new Error(`bench: ${applied} webhooks applied, not ${webhooks - faxCount}`);
        }
        return result.seconds;
      });
    };
    const verifyLoop = async () => {
      const messages = signed(fakeFaxes(faxCount)).map((request) => ({
        data: Buffer.concat([Buffer.from(`${request.headers['telnyx-timestamp']}|`), request.body]),
        signature: Buffer.from(request.headers['telnyx-signature-ed25519'] as string, 'base64'),
      }));
      return measureRound(meter, webhooks, async () => {
        for (const { data, signature } of messages) {
          if (!verify(null, data, publicKey, signature)) throw new Error('bench: a signature did not verify');
        }
        return undefined;
      });
    };

    // Warm every server up (JIT) on one round's worth, unmeasured.
    await post(ours, true)();
    await post(bare, false)();
    await post(bareVerify, false)();
    const [oursSample, bareSample, bareVerifySample, verifySample] = (await rotated(rounds, webhooks, [
      post(ours, true),
      post(bare, false),
      post(bareVerify, false),
      verifyLoop,
    ])) as [Sample, Sample, Sample, Sample];
    await producer.close();
    return {
      ...options,
      webhooks,
      ours: oursSample,
      bareKoa: bareSample,
      bareKoaVerify: bareVerifySample,
      verifyOnly: verifySample,
    };
  } finally {
    redis.disconnect();
    await world.close();
  }
}

/** Fax ids for the baselines, which do not look them up. */
const fakeFaxes = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    faxId: randomUUID(),
    telnyxFaxId: randomUUID(),
    to: benchFax(i).to,
  }));
