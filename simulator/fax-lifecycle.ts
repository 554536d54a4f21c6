import { randomUUID } from 'node:crypto';
import { decodeClientState } from '../shared/client-state.ts';
import type { SimulatorOptions } from './options.ts';
import type { WebhookSigner } from './signer.ts';

/** A fax as the simulator keeps it, in Telnyx's `Fax` shape. */
/** How long Telnyx waits for a webhook's 2xx before it counts the delivery as failed. */
const WEBHOOK_ANSWER_MS = 2000;

export interface SimFax {
  id: string;
  record_type: 'fax';
  direction: 'outbound' | 'inbound';
  status: string;
  connection_id: string;
  from: string;
  to: string;
  media_url?: string;
  media_name?: string;
  from_display_name?: string;
  quality: string;
  client_state?: string;
  webhook_url?: string;
  store_media: boolean;
  created_at: string;
  updated_at: string;
  failure_reason?: string;
  /** Inbound: pages received. */
  page_count?: number;
}

/** An inbound fax to simulate: someone faxes one of our numbers. */
export interface InboundFaxInput {
  readonly from: string;
  readonly to: string;
  readonly connection_id?: string;
  /** Pages in the document (the simulator serves a small PDF of that many pages). */
  readonly pages?: number;
}

export interface SimulatorStats {
  posts: number;
  /** `GET /v2/faxes` (list) requests. */
  lists: number;
  accepted: number;
  /** POSTs per pipeline fax id (from client_state) or per `to` otherwise: "sent exactly once". */
  postsByFax: Record<string, number>;
  /** Faxes created per pipeline fax id and attempt (`<id>#<attempt>`): more than 1 is a double send. */
  acceptedByAttempt: Record<string, number>;
  inFlight: number;
  maxInFlight: number;
  /** Highest number of simultaneous calls to one destination. */
  maxInFlightPerDestination: number;
  /** Highest number of simultaneous calls per connection id and per outbound profile. */
  maxInFlightByConnection: Record<string, number>;
  maxInFlightByProfile: Record<string, number>;
  /**
   * The most calls ever asked for at once — those in flight plus a new one, whether it was then
   * refused over a limit or not — overall, per connection, per profile and per destination. A sender
   * that respects the limits never makes these exceed them.
   */
  maxDemand: number;
  maxDemandByConnection: Record<string, number>;
  maxDemandByProfile: Record<string, number>;
  maxDemandPerDestination: number;
  /** Failed faxes by failure_reason. */
  failuresByReason: Record<string, number>;
  /** With `recordTimes` (ms, fractional): each POST's arrival, each call's end, and [time, calls in flight] at every change. */
  postTimes: number[];
  callEndTimes: number[];
  timeline: [number, number][];
  delivered: number;
  failed: number;
  webhooksSent: number;
  webhooksFailed: number;
  /** Inbound documents fetched (by the media link), refused (expired or wrong link), links refreshed. */
  mediaDownloads: number;
  mediaRefused: number;
  mediaRefreshes: number;
}

export interface Lifecycle {
  readonly faxes: Map<string, SimFax>;
  readonly stats: SimulatorStats;
  /** Bodies of every accepted POST, for contract checks. */
  readonly requests: unknown[];
  accept(body: Record<string, unknown>): SimFax;
  cancel(fax: SimFax): boolean;
  /**
   * Someone faxes us: the inbound webhooks follow (`fax.receiving.started`,
   * `fax.media.processing.started`, then `fax.received` — or `fax.delivered` with
   * `inboundAsDelivered` — with a `media_url` under `mediaBase` that works for `mediaLinkMs`).
   */
  receive(input: InboundFaxInput, mediaBase: string): SimFax;
  /** A new media link for an inbound fax (`POST /v2/faxes/{id}/actions/refresh`). */
  refreshMedia(fax: SimFax, mediaBase: string): void;
  /** The document behind a media link, or undefined if the link is wrong or has expired. */
  media(faxId: string, token: string): Buffer | undefined;
  close(): void;
}

const TERMINAL = new Set(['delivered', 'failed']);

/** Milliseconds on the wall clock, with the fractions performance.now() gives. */
export const preciseNow = () => performance.timeOrigin + performance.now();

export function createLifecycle(options: () => SimulatorOptions, signer: WebhookSigner): Lifecycle {
  const faxes = new Map<string, SimFax>();
  const timers = new Set<NodeJS.Timeout>();
  const perDestination = new Map<string, number>();
  const perConnection = new Map<string, number>();
  const perProfile = new Map<string, number>();
  const holding = new Set<string>();
  const stats: SimulatorStats = {
    posts: 0,
    lists: 0,
    accepted: 0,
    postsByFax: {},
    acceptedByAttempt: {},
    inFlight: 0,
    maxInFlight: 0,
    maxInFlightPerDestination: 0,
    maxInFlightByConnection: {},
    maxInFlightByProfile: {},
    maxDemand: 0,
    maxDemandByConnection: {},
    maxDemandByProfile: {},
    maxDemandPerDestination: 0,
    failuresByReason: {},
    postTimes: [],
    callEndTimes: [],
    timeline: [],
    delivered: 0,
    failed: 0,
    webhooksSent: 0,
    webhooksFailed: 0,
    mediaDownloads: 0,
    mediaRefused: 0,
    mediaRefreshes: 0,
  };
  /** Inbound faxes' documents and their current media link (token, expiry). */
  const documents = new Map<string, { pdf: Buffer; token: string; expires: number }>();
  const requests: unknown[] = [];
  let closed = false;

  const later = (ms: number, run: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) run();
    }, ms);
    timers.add(timer);
  };

  function payloadOf(fax: SimFax, status: string): Record<string, unknown> {
    return {
      fax_id: fax.id,
      connection_id: fax.connection_id,
      direction: fax.direction,
      from: fax.from,
      to: fax.to,
      ...(fax.media_url ? { original_media_url: fax.media_url } : { media_name: fax.media_name }),
      status,
      user_id: '19a75cea-02c6-4b9a-84fa-c9bc8341feb8',
      ...(fax.client_state ? { client_state: fax.client_state } : {}),
    };
  }

  async function deliver(fax: SimFax, eventType: string, payload: Record<string, unknown>): Promise<void> {
    const url = fax.webhook_url ?? options().webhookUrl;
    if (!url) return;
    const eventId = randomUUID();
    const occurredAt = new Date().toISOString();
    const delayMs = options().webhookDelayMs;
    if (delayMs > 0) await new Promise((resolve) => later(delayMs, () => resolve(undefined)));
    const copies = options().duplicateWebhooks ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      for (let attempt = 1; attempt <= options().webhookAttempts && !closed; attempt++) {
        const body = JSON.stringify({
          data: {
            event_type: eventType,
            id: eventId,
            occurred_at: occurredAt,
            record_type: 'event',
            payload,
          },
          meta: { attempt, delivered_to: url },
        });
        try {
          // As Telnyx: only a 2xx within 2 seconds counts; a redirect is a failure, not followed.
          const response = await fetch(url, {
            method: 'POST',
            headers: signer.headers(body),
            body,
            redirect: 'manual',
            signal: AbortSignal.timeout(WEBHOOK_ANSWER_MS),
          });
          await response.arrayBuffer();
          if (response.ok) {
            stats.webhooksSent++;
            break;
          }
        } catch {
          // Telnyx retries a webhook that got no 2xx; so do we.
        }
        stats.webhooksFailed++;
        await new Promise((resolve) => later(100 * 2 ** (attempt - 1), () => resolve(undefined)));
      }
    }
  }

  function move(fax: SimFax, status: string, eventType: string, extra: Record<string, unknown> = {}) {
    fax.status = status;
    fax.updated_at = new Date().toISOString();
    return deliver(fax, eventType, { ...payloadOf(fax, status), ...extra });
  }

  const profileOf = (connectionId: string): string | undefined =>
    Object.entries(options().outboundProfiles).find(([, profile]) =>
      profile.connections.includes(connectionId),
    )?.[0];

  const bump = (counts: Map<string, number>, key: string, by: number) => {
    const value = (counts.get(key) ?? 0) + by;
    counts.set(key, value);
    return value;
  };

  function noteInFlight() {
    if (options().recordTimes) stats.timeline.push([preciseNow(), stats.inFlight]);
  }

  function noteDemand(fax: SimFax) {
    stats.maxDemand = Math.max(stats.maxDemand, stats.inFlight + 1);
    const byConnection = (perConnection.get(fax.connection_id) ?? 0) + 1;
    stats.maxDemandByConnection[fax.connection_id] = Math.max(
      stats.maxDemandByConnection[fax.connection_id] ?? 0,
      byConnection,
    );
    const profile = profileOf(fax.connection_id);
    if (profile !== undefined) {
      const byProfile = (perProfile.get(profile) ?? 0) + 1;
      stats.maxDemandByProfile[profile] = Math.max(stats.maxDemandByProfile[profile] ?? 0, byProfile);
    }
    stats.maxDemandPerDestination = Math.max(
      stats.maxDemandPerDestination,
      (perDestination.get(fax.to) ?? 0) + 1,
    );
  }

  /** The failure Telnyx would give a call over one of its channel limits, if any. */
  function overLimit(fax: SimFax): string | undefined {
    const opts = options();
    if (opts.accountChannelLimit !== undefined && stats.inFlight >= opts.accountChannelLimit) {
      return 'user_channel_limit_exceeded';
    }
    const profile = profileOf(fax.connection_id);
    const profileLimit = profile === undefined ? undefined : opts.outboundProfiles[profile]?.limit;
    if (
      profile !== undefined &&
      profileLimit !== undefined &&
      (perProfile.get(profile) ?? 0) >= profileLimit
    ) {
      return 'outbound_profile_channel_limit_exceeded';
    }
    const connectionLimit = opts.connectionChannelLimits[fax.connection_id] ?? opts.channelLimit;
    if (connectionLimit !== undefined && (perConnection.get(fax.connection_id) ?? 0) >= connectionLimit) {
      return 'connection_channel_limit_exceeded';
    }
    return undefined;
  }

  function startCall(fax: SimFax) {
    holding.add(fax.id);
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    const calls = bump(perDestination, fax.to, 1);
    stats.maxInFlightPerDestination = Math.max(stats.maxInFlightPerDestination, calls);
    const onConnection = bump(perConnection, fax.connection_id, 1);
    stats.maxInFlightByConnection[fax.connection_id] = Math.max(
      stats.maxInFlightByConnection[fax.connection_id] ?? 0,
      onConnection,
    );
    const profile = profileOf(fax.connection_id);
    if (profile !== undefined) {
      const onProfile = bump(perProfile, profile, 1);
      stats.maxInFlightByProfile[profile] = Math.max(stats.maxInFlightByProfile[profile] ?? 0, onProfile);
    }
    noteInFlight();
  }

  function endCall(fax: SimFax) {
    if (holding.delete(fax.id)) {
      stats.inFlight--;
      bump(perDestination, fax.to, -1);
      bump(perConnection, fax.connection_id, -1);
      const profile = profileOf(fax.connection_id);
      if (profile !== undefined) bump(perProfile, profile, -1);
      noteInFlight();
      if (options().recordTimes) stats.callEndTimes.push(preciseNow());
    }
  }

  function finish(fax: SimFax, failureReason: string | undefined) {
    if (TERMINAL.has(fax.status)) return;
    endCall(fax);
    const opts = options();
    if (failureReason) {
      fax.failure_reason = failureReason;
      stats.failed++;
      stats.failuresByReason[failureReason] = (stats.failuresByReason[failureReason] ?? 0) + 1;
    } else stats.delivered++;
    const status = failureReason ? 'failed' : 'delivered';
    const extra = failureReason
      ? { failure_reason: failureReason }
      : { call_duration_secs: 1, page_count: 1 };
    fax.status = status;
    fax.updated_at = new Date().toISOString();
    if (!opts.dropTerminalWebhooks)
      void deliver(fax, `fax.${status}`, { ...payloadOf(fax, status), ...extra });
  }

  const failedSoFar = new Map<string, number>();
  /** The `failFirst` failure for this call to a destination, while its count lasts. */
  function firstFailure(to: string): string | undefined {
    const rule = options().failFirst[to];
    const count = failedSoFar.get(to) ?? 0;
    if (!rule || count >= rule.times) return undefined;
    failedSoFar.set(to, count + 1);
    return rule.reason;
  }

  function run(fax: SimFax) {
    const opts = options();
    noteDemand(fax);
    const refused = overLimit(fax);
    void move(fax, 'queued', 'fax.queued');
    if (refused) {
      later(opts.stepMs, () => finish(fax, refused));
      return;
    }
    startCall(fax);
    const failureReason = opts.failures[fax.to] ?? firstFailure(fax.to);
    later(opts.stepMs, () => {
      if (TERMINAL.has(fax.status)) return;
      void move(fax, 'media.processed', 'fax.media.processed');
      later(opts.stepMs, () => {
        if (TERMINAL.has(fax.status)) return;
        if (opts.reorderWebhooks) {
          // Terminal first, then the late sending.started: the order Telnyx does not promise.
          later(opts.callMs, () => {
            finish(fax, failureReason);
            later(opts.stepMs, () => void deliver(fax, 'fax.sending.started', payloadOf(fax, 'sending')));
          });
          return;
        }
        void move(fax, 'sending', 'fax.sending.started');
        later(opts.callMs, () => finish(fax, failureReason));
      });
    });
  }

  function refreshMedia(fax: SimFax, mediaBase: string) {
    const document = documents.get(fax.id);
    if (!document) return;
    document.token = randomUUID().replaceAll('-', '');
    document.expires = Date.now() + options().mediaLinkMs;
    fax.media_url = `${mediaBase}/media/${fax.id}.pdf?token=${document.token}`;
    fax.updated_at = new Date().toISOString();
  }

  return {
    faxes,
    stats,
    requests,
    accept(body) {
      const now = new Date().toISOString();
      const fax: SimFax = {
        id: randomUUID(),
        record_type: 'fax',
        direction: 'outbound',
        status: 'queued',
        connection_id: String(body.connection_id),
        from: String(body.from),
        to: String(body.to),
        quality: typeof body.quality === 'string' ? body.quality : 'high',
        store_media: body.store_media === true,
        created_at: now,
        updated_at: now,
        ...(typeof body.media_url === 'string' ? { media_url: body.media_url } : {}),
        ...(typeof body.media_name === 'string' ? { media_name: body.media_name } : {}),
        ...(typeof body.from_display_name === 'string' ? { from_display_name: body.from_display_name } : {}),
        ...(typeof body.client_state === 'string' ? { client_state: body.client_state } : {}),
        ...(typeof body.webhook_url === 'string' ? { webhook_url: body.webhook_url } : {}),
      };
      faxes.set(fax.id, fax);
      requests.push(body);
      stats.accepted++;
      const ours = decodeClientState(body.client_state);
      if (ours) {
        const key = `${ours.faxId}#${ours.attempt}`;
        stats.acceptedByAttempt[key] = (stats.acceptedByAttempt[key] ?? 0) + 1;
      }
      run(fax);
      return fax;
    },
    receive(input, mediaBase) {
      const opts = options();
      const now = new Date().toISOString();
      const fax: SimFax = {
        id: randomUUID(),
        record_type: 'fax',
        direction: 'inbound',
        status: 'initiated',
        connection_id: input.connection_id ?? '1232154810234',
        from: input.from,
        to: input.to,
        quality: 'high',
        store_media: true,
        created_at: now,
        updated_at: now,
        page_count: input.pages ?? 1,
      };
      faxes.set(fax.id, fax);
      documents.set(fax.id, { pdf: samplePdf(fax.page_count ?? 1), token: '', expires: 0 });
      const inbound = () => ({
        fax_id: fax.id,
        connection_id: fax.connection_id,
        direction: 'inbound',
        from: fax.from,
        to: fax.to,
        status: fax.status,
        user_id: '19a75cea-02c6-4b9a-84fa-c9bc8341feb8',
      });
      const step = (status: string, eventType: string, extra: Record<string, unknown> = {}) => {
        fax.status = status;
        fax.updated_at = new Date().toISOString();
        return deliver(fax, eventType, { ...inbound(), ...extra });
      };
      // Webhooks go out one after another, in order, like a call that progresses.
      later(opts.stepMs, async () => {
        await step('receiving', 'fax.receiving.started');
        later(opts.callMs, async () => {
          await step('media.processing', 'fax.media.processing.started');
          later(opts.stepMs, () => {
            refreshMedia(fax, mediaBase);
            const received = {
              media_url: fax.media_url,
              page_count: fax.page_count,
              call_duration_secs: 1,
              caller_id: fax.from,
              partial_content: false,
            };
            void (opts.inboundAsDelivered
              ? step('delivered', 'fax.delivered', received)
              : step('received', 'fax.received', received));
          });
        });
      });
      return fax;
    },
    refreshMedia,
    media(faxId, token) {
      const document = documents.get(faxId);
      if (!document || document.token !== token || Date.now() >= document.expires) {
        stats.mediaRefused++;
        return undefined;
      }
      stats.mediaDownloads++;
      return document.pdf;
    },
    cancel(fax) {
      if (!['queued', 'media.processed', 'originated', 'sending'].includes(fax.status)) return false;
      finish(fax, 'sender_canceled');
      return true;
    },
    close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

/** A small valid PDF with `pages` blank A4 pages: what a received fax's document stands for. */
function samplePdf(pages: number): Buffer {
  const objects: string[] = [];
  const kids = Array.from({ length: pages }, (_, i) => `${3 + i} 0 R`).join(' ');
  objects.push('<< /Type /Catalog /Pages 2 0 R >>');
  objects.push(`<< /Type /Pages /Kids [${kids}] /Count ${pages} >>`);
  for (let i = 0; i < pages; i++) objects.push('<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>');
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) body += `${String(offset).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}
