import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import Telnyx from 'telnyx';
import { parse } from 'yaml';
import { listen } from '../shared/http-server.ts';
import type { SimulatorOptionsInput } from '../simulator/options.ts';
import { createSimulator } from '../simulator/simulator.ts';
import { isFinal, SEED_FAX, startPipeline } from './helpers/pipeline.ts';

// Telnyx's own OpenAPI file, read from ../shared beside the repo: the contract, not our copy of it.
const specPath = fileURLToPath(new URL('../../shared/telnyx/fax-openapi.yml', import.meta.url));
const spec = parse(readFileSync(specPath, 'utf8'));
// The spec's failure_reason enum (`rejected` only) is out of date; Telnyx documents many more values.
delete spec.components.schemas.FaxFailed.properties.data.properties.payload.properties.failure_reason.enum;

const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema(spec, 'telnyx');
const schema = (name: string) => {
  const validate = ajv.getSchema(`telnyx#/components/schemas/${name}`);
  if (!validate) throw new Error(`no schema ${name}`);
  return (value: unknown) =>
    validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
};
const sendFaxFields = Object.keys(spec.components.schemas.SendFaxRequest.properties);

test("every request the worker sends is a valid SendFaxRequest of Telnyx's spec, with no field outside it", async (t) => {
  const pipeline = await startPipeline(t);
  const faxes = [
    { ...SEED_FAX },
    {
      ...SEED_FAX,
      quality: 'ultra_dark',
      monochrome: true,
      black_threshold: 70,
      t38_enabled: false,
      store_media: true,
    },
    {
      ...SEED_FAX,
      client_state: 'aGVsbG8=',
      from_display_name: 'Front Desk',
      store_preview: true,
      preview_format: 'pdf',
    },
    { ...SEED_FAX, to: 'sip:fax@example.com' },
  ];
  for (const fax of faxes) {
    const response = await fetch(`${pipeline.producerUrl}/v2/faxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fax),
    });
    const { data } = (await response.json()) as { data: { id: string } };
    await pipeline.waitForFax(data.id, isFinal);
  }
  const requests = pipeline.simulator.lifecycle.requests as Record<string, unknown>[];
  t.is(requests.length, faxes.length);
  const validate = schema('SendFaxRequest');
  for (const request of requests) {
    t.deepEqual(validate(request), []);
    t.deepEqual(
      Object.keys(request).filter((key) => !sendFaxFields.includes(key)),
      [],
    );
    t.is(typeof request.client_state, 'string');
    t.is(request.webhook_url, pipeline.webhookUrl);
  }
});

test("the simulator answers and signs webhooks in the spec's shapes", async (t) => {
  const received: unknown[] = [];
  const capture = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end();
    });
  });
  await new Promise<void>((resolve) => capture.listen(0, '127.0.0.1', resolve));
  t.teardown(() => capture.close());
  const port = (capture.address() as { port: number }).port;
  const simulator = createSimulator({
    apiKey: 'k',
    stepMs: 5,
    callMs: 5,
    webhookUrl: `http://127.0.0.1:${port}/`,
    failures: { '+13129457421': 'receiver_no_answer' },
  });
  t.teardown(() => simulator.close());
  const server = await listen(simulator.app, 0, '127.0.0.1');
  t.teardown(() => server.close());
  const headers = { authorization: 'Bearer k', 'content-type': 'application/json' };

  const accepted = await fetch(`${server.url}/v2/faxes`, {
    method: 'POST',
    headers,
    body: JSON.stringify(SEED_FAX),
  });
  t.is(accepted.status, 202);
  const { data } = (await accepted.json()) as { data: { id: string } };
  t.deepEqual(schema('Fax')(data), []);
  await fetch(`${server.url}/v2/faxes`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ ...SEED_FAX, to: '+13129457421' }),
  });

  const invalid = await fetch(`${server.url}/v2/faxes`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ to: 'x' }),
  });
  t.is(invalid.status, 422);
  t.deepEqual(schema('programmable-fax_Errors')(await invalid.json()), []);
  t.is((await fetch(`${server.url}/v2/faxes`, { method: 'POST', body: '{}' })).status, 401);

  const deadline = Date.now() + 5000;
  while (received.length < 8 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  const byType: Record<string, string> = {
    'fax.queued': 'FaxQueued',
    'fax.media.processed': 'FaxMediaProcessed',
    'fax.sending.started': 'FaxSendingStarted',
    'fax.delivered': 'FaxDelivered',
    'fax.failed': 'FaxFailed',
  };
  const types = [...new Set(received.map((w) => (w as { data: { event_type: string } }).data.event_type))];
  t.deepEqual(types.sort(), Object.keys(byType).sort());
  for (const webhook of received) {
    const type = (webhook as { data: { event_type: string } }).data.event_type;
    t.deepEqual(schema(byType[type] as string)(webhook), [], type);
  }

  const one = await fetch(`${server.url}/v2/faxes/${data.id}`, { headers });
  t.deepEqual(schema('Fax')(((await one.json()) as { data: unknown }).data), []);
  const list = (await (
    await fetch(`${server.url}/v2/faxes?filter[to][eq]=${encodeURIComponent(SEED_FAX.to)}`, { headers })
  ).json()) as {
    data: unknown[];
    meta: unknown;
  };
  t.is(list.data.length, 1);
  t.deepEqual(schema('PaginationMeta')(list.meta), []);
});

/** A simulator on a port of its own, for the official SDK to talk to as if it were Telnyx. */
async function simulatorServer(t: ExecutionContext, options: SimulatorOptionsInput = {}) {
  const simulator = createSimulator({ apiKey: 'k', stepMs: 5, callMs: 5, ...options });
  t.teardown(() => simulator.close());
  const server = await listen(simulator.app, 0, '127.0.0.1');
  t.teardown(() => server.close());
  return {
    simulator,
    url: server.url,
    sdk: new Telnyx({ apiKey: 'k', baseURL: `${server.url}/v2`, maxRetries: 0 }),
  };
}

test("the official SDK's sends reach the simulator as Telnyx takes them: JSON, a document uploaded as contents, and Telnyx's checks on every field", async (t) => {
  const { simulator, url, sdk } = await simulatorServer(t);
  const everyField = {
    ...SEED_FAX,
    quality: 'ultra_dark' as const,
    store_media: true,
    monochrome: true,
    black_threshold: 50,
    t38_enabled: false,
    store_preview: true,
    preview_format: 'pdf' as const,
    from_display_name: 'Company Name',
    client_state: 'aGF2ZSBhIG5pY2UgZGF5ID1d',
  };
  const created = await sdk.faxes.create(everyField);
  t.deepEqual(schema('Fax')(created.data), []);
  t.like(created.data, { quality: 'ultra_dark', store_media: true, from_display_name: 'Company Name' });

  // The SDK sends multipart when given a file: SendFaxMultipartRequest.
  const { media_url: _link, ...withoutLink } = SEED_FAX;
  const uploaded = await sdk.faxes.create({
    ...withoutLink,
    store_media: true,
    contents: new File([Buffer.from('%PDF-1.4\n')], 'letter.pdf', { type: 'application/pdf' }),
  } as Parameters<typeof sdk.faxes.create>[0]);
  t.deepEqual(schema('Fax')(uploaded.data), []);
  t.like(simulator.lifecycle.requests.at(-1), {
    store_media: true,
    contents: { name: 'letter.pdf', type: 'application/pdf', size: 9 },
  });

  // Invalid values get 422 in Telnyx's error shape, one error per field, each named.
  const error = await sdk.faxes
    .create({
      ...SEED_FAX,
      quality: 'bogus',
      black_threshold: 500,
      preview_format: 'gif',
      monochrome: 'yes',
    } as unknown as Parameters<typeof sdk.faxes.create>[0])
    .catch((thrown: unknown) => thrown as { status: number; error: unknown });
  t.is((error as { status: number }).status, 422);
  t.deepEqual(schema('programmable-fax_Errors')((error as { error: unknown }).error), []);
  const pointers = (error as { error: { errors: { source?: { pointer?: string } }[] } }).error.errors.map(
    (e) => e.source?.pointer,
  );
  t.deepEqual(pointers.sort(), ['/black_threshold', '/monochrome', '/preview_format', '/quality']);
  const both = await fetch(`${url}/v2/faxes`, {
    method: 'POST',
    headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
    body: JSON.stringify({ ...SEED_FAX, media_name: 'doc' }),
  });
  t.is(both.status, 422, 'media_url and media_name together');

  // A form body (Telnyx's guide, curl --data-urlencode): its booleans are booleans.
  const form = await fetch(`${url}/v2/faxes`, {
    method: 'POST',
    headers: { authorization: 'Bearer k' },
    body: new URLSearchParams({ ...SEED_FAX, store_media: 'true', monochrome: 'false' }),
  });
  t.is(form.status, 202);
  t.like(((await form.json()) as { data: unknown }).data, { store_media: true });
  t.like(simulator.lifecycle.requests.at(-1), { store_media: true, monochrome: false });
});

test('the simulator filters faxes by created_at as times, not as text, and names a filter that is not one', async (t) => {
  const { url, sdk } = await simulatorServer(t);
  const { data } = await sdk.faxes.create(SEED_FAX);
  const created = Date.parse(data?.created_at as string);
  const second = new Date(Math.floor(created / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  const micro = new Date(created).toISOString().replace('Z', '000Z');
  const count = async (filter: Record<string, string>) => {
    const page = await sdk.faxes.list({ filter: { created_at: filter } } as Parameters<
      typeof sdk.faxes.list
    >[0]);
    return page.data.length;
  };
  t.is(await count({ gte: second }), 1, `gte ${second}, the same second without fractions`);
  t.is(await count({ lte: micro }), 1, `lte ${micro}, the same moment in microseconds`);
  t.is(await count({ gt: micro }), 0);
  t.is(await count({ lt: second }), 0);
  const bad = await fetch(`${url}/v2/faxes?filter[created_at][gte]=yesterday`, {
    headers: { authorization: 'Bearer k' },
  });
  t.is(bad.status, 422);
  t.like(((await bad.json()) as { errors: unknown[] }).errors[0], {
    source: { parameter: 'filter[created_at][gte]' },
  });
});

test('the simulator delivers webhooks as Telnyx does: only a 2xx within 2 seconds counts, and a redirect is not followed but tried again', async (t) => {
  const hits: string[] = [];
  const receiver = createServer((req, res) => {
    hits.push(req.url as string);
    req.resume();
    if (req.url === '/moved') {
      res.writeHead(307, { location: '/ok' }).end();
      return;
    }
    if (req.url === '/slow') {
      setTimeout(() => res.end(), 2500);
      return;
    }
    res.end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    receiver.closeAllConnections();
    receiver.close();
  });
  const base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  const { simulator, sdk } = await simulatorServer(t, { webhookAttempts: 2 });
  await sdk.faxes.create({ ...SEED_FAX, webhook_url: `${base}/moved` });
  await sdk.faxes.create({ ...SEED_FAX, to: '+13129457421', webhook_url: `${base}/slow` });
  const stats = simulator.lifecycle.stats;
  // Each of the 4 webhooks of each fax tried twice, none counted as delivered.
  const deadline = Date.now() + 20_000;
  while (stats.webhooksFailed < 16 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(stats.webhooksFailed, 16);
  t.is(stats.webhooksSent, 0);
  t.false(hits.includes('/ok'), 'the redirect was not followed');
});
