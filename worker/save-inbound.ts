import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import { applyEvent, type EventSink } from '../shared/events.ts';
import { INBOUND_ATTEMPTS, type InboundDocumentJob } from '../shared/inbound.ts';
import { INBOUND_QUEUE } from '../shared/keys.ts';
import type { Logger } from '../shared/logger.ts';
import { OWN_EVENTS } from '../shared/status.ts';
import type { TelnyxClient } from '../shared/telnyx-client.ts';
import type { RateLimiter } from './rate-limiter.ts';

export interface InboundDeps extends EventSink {
  readonly telnyx: TelnyxClient;
  /** Refreshing a link is a Telnyx API call: it takes its turn under the shared rate limit. */
  readonly limiter: RateLimiter;
  readonly logger: Logger;
  /** FAX_INBOUND_DIR. */
  readonly dir: string;
  /** A document over this size is refused (default 100 MB). */
  readonly maxBytes?: number;
  /** One download may take this long (default 2 minutes). */
  readonly downloadTimeoutMs?: number;
  /** Aborted when the worker shuts down (the rate limiter's waits end with it). */
  readonly stopping?: AbortSignal;
}

export interface SavedDocument {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly contentType: string;
}

/** Answers of a storage link that has expired or was replaced: ask Telnyx for a new one. */
const STALE_LINK = new Set([401, 403, 404, 410]);

const EXTENSIONS: Record<string, string> = { 'application/pdf': 'pdf', 'image/tiff': 'tif' };

class DownloadError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/**
 * Saves a received fax's document as `<dir>/<telnyx fax id>.pdf` and publishes `fax.media.saved` with
 * the file's path. A link that has expired (Telnyx's last about 10 minutes) is renewed with
 * `POST /v2/faxes/{id}/actions/refresh` and read again with `GET /v2/faxes/{id}`. The file appears
 * whole or not at all (written aside, synced, renamed); doing it again replaces it with the same bytes.
 */
export async function saveInboundDocument(
  deps: InboundDeps,
  job: InboundDocumentJob,
): Promise<SavedDocument> {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(job.telnyxFaxId)) {
    throw new UnrecoverableError(`fax id ${JSON.stringify(job.telnyxFaxId)} cannot name a file`);
  }
  let url = job.mediaUrl;
  let saved: SavedDocument | undefined;
  for (let refreshed = false; saved === undefined; refreshed = true) {
    try {
      saved = await download(deps, url, job.telnyxFaxId);
    } catch (error) {
      if (refreshed || !(error instanceof DownloadError) || !STALE_LINK.has(error.status ?? 0)) throw error;
      url = await freshLink(deps, job.telnyxFaxId);
    }
  }
  await publish(deps, job, OWN_EVENTS.mediaSaved, {
    ...(job.pageCount !== undefined ? { page_count: job.pageCount } : {}),
    document_path: saved.path,
    content_type: saved.contentType,
    bytes: saved.bytes,
    sha256: saved.sha256,
  });
  return saved;
}

async function freshLink(deps: InboundDeps, telnyxFaxId: string): Promise<string> {
  await deps.limiter.take();
  if (!(await deps.telnyx.refreshFax(telnyxFaxId))) {
    throw new UnrecoverableError(`Telnyx no longer has fax ${telnyxFaxId}: its document cannot be fetched`);
  }
  await deps.limiter.take();
  const fax = await deps.telnyx.getFax(telnyxFaxId);
  if (typeof fax?.media_url !== 'string') {
    throw new DownloadError(`Telnyx gave no media_url for fax ${telnyxFaxId} after a refresh`);
  }
  deps.logger.info({ telnyxFaxId }, 'inbound media link renewed');
  return fax.media_url;
}

async function download(deps: InboundDeps, url: string, telnyxFaxId: string): Promise<SavedDocument> {
  const maxBytes = deps.maxBytes ?? 100 * 1024 * 1024;
  const timeout = AbortSignal.timeout(deps.downloadTimeoutMs ?? 120_000);
  // A shutdown ends a download too: the job goes back to its queue (below) and is done again whole.
  const signal = deps.stopping ? AbortSignal.any([timeout, deps.stopping]) : timeout;
  const response = await fetch(url, { signal });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new DownloadError(`the document link answered ${response.status}`, response.status);
  }
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const dir = resolve(deps.dir);
  const path = join(dir, `${telnyxFaxId}.${EXTENSIONS[contentType] ?? 'pdf'}`);
  const partial = join(dir, `.${telnyxFaxId}.${randomUUID()}.part`);
  const hash = createHash('sha256');
  let bytes = 0;
  const file = await open(partial, 'wx');
  try {
    for await (const chunk of response.body) {
      bytes += chunk.byteLength;
      if (bytes > maxBytes) throw new UnrecoverableError(`the document is over ${maxBytes} bytes`);
      hash.update(chunk);
      await file.write(chunk);
    }
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(partial, { force: true });
    throw error;
  }
  await file.close();
  await rename(partial, path);
  // The rename itself survives a power cut only once the directory is synced.
  const directory = await open(dir, 'r');
  await directory.sync().finally(() => directory.close());
  return { path, bytes, sha256: hash.digest('hex'), contentType: contentType || 'application/pdf' };
}

/** Workers that save received faxes' documents (FAX_INBOUND_DIR); several processes may run them. */
export async function createInboundWorker(
  deps: InboundDeps,
  options: { readonly concurrency: number },
): Promise<Worker<InboundDocumentJob>> {
  await mkdir(deps.dir, { recursive: true });
  await removeStalePartials(deps);
  const worker = new Worker<InboundDocumentJob>(
    INBOUND_QUEUE,
    async (job: Job<InboundDocumentJob>, token?: string) => {
      if (deps.stopping?.aborted) {
        // Shutting down: not started; due again at once, for another worker.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      try {
        const saved = await saveInboundDocument(deps, job.data);
        deps.logger.info(
          { telnyxFaxId: job.data.telnyxFaxId, path: saved.path, bytes: saved.bytes },
          'inbound fax saved',
        );
      } catch (error) {
        if (deps.stopping?.aborted && !(error instanceof UnrecoverableError)) {
          // Cut short by a shutdown (a wait for its turn at Telnyx): back to the queue, no attempt used.
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError();
        }
        const last =
          error instanceof UnrecoverableError ||
          job.attemptsMade + 1 >= (job.opts.attempts ?? INBOUND_ATTEMPTS);
        deps.logger.warn({ telnyxFaxId: job.data.telnyxFaxId, err: error, last }, 'inbound fax not saved');
        if (last) {
          const why = error instanceof Error ? error.message : String(error);
          await publish(deps, job.data, OWN_EVENTS.mediaSaveFailed, {}, why);
        }
        throw error;
      }
    },
    {
      connection: deps.redis,
      prefix: deps.keys.bullPrefix,
      concurrency: options.concurrency,
      // A download redelivered after a crash is simply done again: let it survive a few.
      maxStalledCount: 5,
    },
  );
  worker.on('error', (error) => deps.logger.error({ err: error }, 'inbound worker error'));
  return worker;
}

/** Partial files a crashed download left (`.<id>.<uuid>.part`), once they are an hour old. */
async function removeStalePartials(deps: InboundDeps): Promise<void> {
  const dir = resolve(deps.dir);
  for (const name of await readdir(dir)) {
    if (!name.startsWith('.') || !name.endsWith('.part')) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > 3_600_000) {
      await rm(path, { force: true });
      deps.logger.info({ path }, 'removed a partial download left by a crash');
    }
  }
}

/** One entry per fax and event type, however often the job runs (the event id is derived from both). */
async function publish(
  deps: InboundDeps,
  job: InboundDocumentJob,
  eventType: string,
  details: Record<string, unknown>,
  detail?: string,
): Promise<void> {
  await applyEvent(deps, {
    eventId: `${job.telnyxFaxId}:${eventType}`,
    eventType,
    faxId: undefined,
    status: undefined,
    telnyxFaxId: job.telnyxFaxId,
    occurredAt: new Date().toISOString(),
    direction: 'inbound',
    dedupe: true,
    ...(detail !== undefined ? { detail } : {}),
    payload: { fax_id: job.telnyxFaxId, from: job.from, to: job.to, ...details },
  });
}
