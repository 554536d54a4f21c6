import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { isFinal, queueFax, SEED_FAX, startPipeline } from './helpers/pipeline.ts';
import { FAX_CLI, SEND_SEED_FAX } from './helpers/processes.ts';

const run = promisify(execFile);
const TAGS = { customer: 'acme-42', 'invoice.id': 'INV-2291' };

test("a fax's tags come back from the API and ride on every one of its stream entries, and never reach Telnyx", async (t) => {
  const pipeline = await startPipeline(t);
  const id = await queueFax(pipeline, { ...SEED_FAX, tags: TAGS });
  const entries = await pipeline.waitForFax(id, isFinal);
  t.true(entries.length >= 5);
  t.true(
    entries.every((entry) => JSON.stringify(entry.tags) === JSON.stringify(TAGS)),
    'every entry',
  );
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${id}`)).json()) as { data: unknown };
  t.like(view.data, { tags: TAGS });
  t.true(
    pipeline.simulator.lifecycle.requests.every((body) => !('tags' in (body as object))),
    'not in what Telnyx received',
  );
});

test('tags from a form body and from fax send --tag; malformed tags are refused by name', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const form = new URLSearchParams({ ...SEED_FAX, 'tags[customer]': 'acme-42' });
  const response = await fetch(`${pipeline.producerUrl}/v2/faxes`, { method: 'POST', body: form });
  t.is(response.status, 202);
  t.like(((await response.json()) as { data: unknown }).data, { tags: { customer: 'acme-42' } });

  const env = { ...process.env, ...pipeline.env };
  const sent = await run(
    'node',
    [FAX_CLI, ...SEND_SEED_FAX, '--tag', 'customer=acme-42', '--tag', 'batch=7'],
    { env },
  );
  const { id } = JSON.parse(sent.stdout) as { id: string };
  const view = (await (await fetch(`${pipeline.producerUrl}/v2/faxes/${id}`)).json()) as { data: unknown };
  t.like(view.data, { tags: { customer: 'acme-42', batch: '7' } });

  for (const tags of [
    { nested: { a: 'b' } },
    { n: 7 },
    { 'bad key': 'x' },
    ['a'],
    Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])),
  ]) {
    const bad = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...SEED_FAX, tags }),
    });
    t.is(bad.status, 422, JSON.stringify(tags));
    const body = (await bad.json()) as { errors: { source: { pointer: string } }[] };
    t.true(
      body.errors.some((error) => error.source.pointer.startsWith('/tags')),
      JSON.stringify(body),
    );
  }
});
