import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Queue } from 'bullmq';
import { INBOUND_QUEUE } from '../shared/keys.ts';
import type { StreamEntry } from '../shared/events.ts';
import { startWorkerService } from '../worker/main.ts';
import { type PipelineOptions, startPipeline, type TestPipeline } from './helpers/pipeline.ts';
import { until } from './helpers/until.ts';

async function inboundDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fax-inbound-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function pipelineReceiving(
  t: ExecutionContext,
  dir: string | undefined,
  options: PipelineOptions = {},
) {
  const pipeline = await startPipeline(t, {
    ...options,
    env: { ...(dir ? { FAX_INBOUND_DIR: dir } : {}), ...options.env },
  });
  pipeline.simulator.configure({ webhookUrl: pipeline.webhookUrl });
  return pipeline;
}

/** Someone faxes +13129457420 through the simulator; resolves to Telnyx's id for the fax. */
async function receiveFax(pipeline: TestPipeline, pages = 2): Promise<string> {
  const response = await fetch(`${pipeline.simulatorUrl}/simulator/inbound`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from: '+19459457421', to: '+13129457420', pages }),
  });
  return ((await response.json()) as { data: { id: string } }).data.id;
}

async function entriesOf(pipeline: TestPipeline, telnyxFaxId: string): Promise<StreamEntry[]> {
  return (await pipeline.entries()).filter((entry) => entry.telnyx_fax_id === telnyxFaxId);
}

async function waitForEntry(pipeline: TestPipeline, telnyxFaxId: string, type: string): Promise<StreamEntry> {
  let found: StreamEntry | undefined;
  await until(async () => {
    found = (await entriesOf(pipeline, telnyxFaxId)).find((entry) => entry.event_type === type);
    return found !== undefined;
  }, `${type} for ${telnyxFaxId}`);
  return found as StreamEntry;
}

test('an inbound fax is published with direction inbound and its document saved; the entry points to the file', async (t) => {
  const dir = await inboundDir(t);
  const pipeline = await pipelineReceiving(t, dir);
  const telnyxFaxId = await receiveFax(pipeline, 3);
  const saved = await waitForEntry(pipeline, telnyxFaxId, 'fax.media.saved');

  const types = (await entriesOf(pipeline, telnyxFaxId)).map((entry) => entry.event_type);
  for (const type of ['fax.receiving.started', 'fax.media.processing.started', 'fax.received']) {
    t.true(types.includes(type), `${type} published`);
  }
  t.true((await entriesOf(pipeline, telnyxFaxId)).every((entry) => entry.direction === 'inbound'));

  const payload = saved.payload as Record<string, unknown>;
  t.is(payload.document_path, join(dir, `${telnyxFaxId}.pdf`));
  const file = await readFile(String(payload.document_path));
  t.is(file.subarray(0, 5).toString(), '%PDF-');
  t.regex(file.toString('latin1'), /\/Count 3/, 'the document the simulator served');
  t.like(payload, {
    fax_id: telnyxFaxId,
    from: '+19459457421',
    to: '+13129457420',
    content_type: 'application/pdf',
    bytes: file.length,
    sha256: createHash('sha256').update(file).digest('hex'),
    page_count: 3,
  });
  t.deepEqual(await readdir(dir), [`${telnyxFaxId}.pdf`], 'no partial files left behind');
  t.is(pipeline.simulator.lifecycle.stats.mediaDownloads, 1);
});

test('a link that expired before a worker got to it is refreshed at Telnyx, then the document is saved', async (t) => {
  const dir = await inboundDir(t);
  // No worker yet, and links that die at once: the document waits in the queue past its link.
  const pipeline = await pipelineReceiving(t, dir, { worker: false, simulator: { mediaLinkMs: 0 } });
  const telnyxFaxId = await receiveFax(pipeline);
  await waitForEntry(pipeline, telnyxFaxId, 'fax.received');
  pipeline.simulator.configure({ mediaLinkMs: 600_000 });

  const worker = await startWorkerService(pipeline.runtime);
  t.teardown(() => worker.close());
  const saved = await waitForEntry(pipeline, telnyxFaxId, 'fax.media.saved');
  const { stats } = pipeline.simulator.lifecycle;
  t.is(stats.mediaRefused, 1, 'the stale link was refused');
  t.is(stats.mediaRefreshes, 1, 'Telnyx was asked for a new link');
  t.is(stats.mediaDownloads, 1);
  t.is(
    (await readFile(String((saved.payload as Record<string, unknown>).document_path)))
      .subarray(0, 5)
      .toString(),
    '%PDF-',
  );
});

test('an account that announces received faxes as inbound fax.delivered, twice over, gets each document saved once', async (t) => {
  const dir = await inboundDir(t);
  const pipeline = await pipelineReceiving(t, dir, {
    simulator: { inboundAsDelivered: true, duplicateWebhooks: true },
  });
  const telnyxFaxId = await receiveFax(pipeline);
  await waitForEntry(pipeline, telnyxFaxId, 'fax.media.saved');
  await until(() => pipeline.simulator.lifecycle.stats.webhooksSent >= 6, 'every copy of every webhook sent');
  const entries = await entriesOf(pipeline, telnyxFaxId);
  t.is(entries.filter((entry) => entry.event_type === 'fax.delivered').length, 1, 'the copy is deduplicated');
  t.like(
    entries.find((entry) => entry.event_type === 'fax.delivered'),
    { direction: 'inbound', fax_id: '' },
  );
  t.is(entries.filter((entry) => entry.event_type === 'fax.media.saved').length, 1);
  t.is(pipeline.simulator.lifecycle.stats.mediaDownloads, 1);
});

test('without FAX_INBOUND_DIR, inbound events are published with their link and nothing is fetched', async (t) => {
  const pipeline = await pipelineReceiving(t, undefined);
  const telnyxFaxId = await receiveFax(pipeline);
  const received = await waitForEntry(pipeline, telnyxFaxId, 'fax.received');
  t.regex(String((received.payload as Record<string, unknown>).media_url), /\/media\/.+\.pdf\?token=/);
  // Every webhook answered (a document is queued before the answer): nothing was queued to fetch.
  await until(
    () => pipeline.simulator.lifecycle.stats.webhooksSent >= 3,
    'the three inbound webhooks answered',
  );
  const queue = new Queue(INBOUND_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  const counts = await queue.getJobCounts();
  t.is(
    Object.values(counts).reduce((sum, n) => sum + n, 0),
    0,
    'no document queued',
  );
  t.is(pipeline.simulator.lifecycle.stats.mediaDownloads, 0);
  t.false((await entriesOf(pipeline, telnyxFaxId)).some((entry) => entry.event_type === 'fax.media.saved'));
});

test('a document that can no longer be fetched is published as fax.media.save_failed, naming why', async (t) => {
  const dir = await inboundDir(t);
  const pipeline = await pipelineReceiving(t, dir, { worker: false, simulator: { mediaLinkMs: 0 } });
  const telnyxFaxId = await receiveFax(pipeline);
  await waitForEntry(pipeline, telnyxFaxId, 'fax.received');
  // Gone at Telnyx: the stale link cannot be renewed.
  const deleted = await fetch(`${pipeline.simulatorUrl}/v2/faxes/${telnyxFaxId}`, {
    method: 'DELETE',
    headers: { authorization: 'Bearer test-key' },
  });
  t.is(deleted.status, 204);
  const worker = await startWorkerService(pipeline.runtime);
  t.teardown(() => worker.close());
  const failed = await waitForEntry(pipeline, telnyxFaxId, 'fax.media.save_failed');
  t.regex(failed.detail ?? '', /Telnyx no longer has fax .+: its document cannot be fetched/);
  t.deepEqual(await readdir(dir), [], 'no file, whole or partial');
});
