import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { listen } from '../shared/http-server.ts';
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
