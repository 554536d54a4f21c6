import { randomUUID } from 'node:crypto';
import test from 'ava';
import { Queue } from 'bullmq';
import { FAX_QUEUE } from '../shared/keys.ts';
import { SEED_FAX, startPipeline, type TestPipeline } from './helpers/pipeline.ts';

/**
 * Malformed and hostile requests to both HTTP services, each with the answer it must get; after all of
 * them nothing is queued, stored or published (but for the one replayed webhook, published once).
 */
const TOKEN = 'a-long-enough-api-token';
const JSON_TYPE = { 'content-type': 'application/json' };

interface Case {
  readonly name: string;
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  /** A JSON value (serialised), or a raw string body. */
  readonly body?: unknown;
  readonly raw?: string;
  readonly status: number;
  /** Telnyx error code, and the field it must name. */
  readonly code?: string;
  readonly pointer?: string;
  readonly parameter?: string;
  /** What the first error's detail must say. */
  readonly detail?: RegExp;
}

const fax = (patch: Record<string, unknown>) => ({ ...SEED_FAX, ...patch });

const PRODUCER_CASES: Case[] = [
  { name: 'malformed JSON', raw: '{"to": ', status: 400, code: '10015' },
  { name: 'a JSON array', body: [SEED_FAX], status: 422, code: '10015' },
  { name: 'a JSON string', raw: '"fax me"', status: 400 },
  { name: 'JSON null', raw: 'null', status: 400 },
  { name: 'an empty body', raw: '', status: 422, pointer: '/to' },
  { name: 'a 2 MB body', body: fax({ client_state: 'A'.repeat(2_000_000) }), status: 413 },
  { name: 'text/plain', raw: 'to=+13129457420', headers: { 'content-type': 'text/plain' }, status: 415 },
  {
    name: 'multipart',
    raw: '--x--',
    headers: { 'content-type': 'multipart/form-data; boundary=x' },
    status: 415,
  },
  { name: 'no content type', raw: JSON.stringify(SEED_FAX), headers: {}, status: 415 },
  {
    name: 'a form field given twice',
    raw: 'to=%2B13129457420&to=%2B13129457421&from=%2B19459457421&connection_id=1&media_url=https%3A%2F%2Fe.com%2Fa.pdf',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 422,
    pointer: '/to',
  },
  { name: 'to missing', body: fax({ to: undefined }), status: 422, code: '10004', pointer: '/to' },
  { name: 'to without +', body: fax({ to: '13129457420' }), status: 422, code: '10016', pointer: '/to' },
  { name: 'to with letters', body: fax({ to: '+1312CALLNOW' }), status: 422, pointer: '/to' },
  { name: 'to with SQL', body: fax({ to: "+1312'; DROP TABLE faxes;--" }), status: 422, pointer: '/to' },
  { name: 'to with a NUL byte', body: fax({ to: '+13129457420\u0000' }), status: 422, pointer: '/to' },
  { name: 'to 5 kB long', body: fax({ to: `+1${'3'.repeat(5000)}` }), status: 422, pointer: '/to' },
  { name: 'to as a number', body: fax({ to: 13129457420 }), status: 422, pointer: '/to' },
  {
    name: 'connection_id as a number: sent, so not "missing"',
    body: fax({ connection_id: 234423 }),
    status: 422,
    code: '10015',
    pointer: '/connection_id',
    detail: /^connection_id must be a string$/,
  },
  {
    name: 'client_state null',
    body: fax({ client_state: null }),
    status: 422,
    code: '10015',
    pointer: '/client_state',
    detail: /^client_state must be a string$/,
  },
  { name: 'from as a SIP URI', body: fax({ from: 'sip:me@example.com' }), status: 422, pointer: '/from' },
  {
    name: 'media_url ftp',
    body: fax({ media_url: 'ftp://e.com/a.pdf' }),
    status: 422,
    code: '10003',
    pointer: '/media_url',
  },
  {
    name: 'media_url javascript:',
    body: fax({ media_url: 'javascript:alert(1)' }),
    status: 422,
    pointer: '/media_url',
  },
  {
    name: 'media_url file://',
    body: fax({ media_url: 'file:///etc/passwd' }),
    status: 422,
    pointer: '/media_url',
  },
  {
    name: 'media_url on a host not allowed',
    body: fax({ media_url: 'https://evil.example.net/a.pdf' }),
    status: 422,
    pointer: '/media_url',
  },
  {
    name: 'media_url as an object',
    body: fax({ media_url: { href: 'https://e.com' } }),
    status: 422,
    pointer: '/media_url',
  },
  { name: 'media_url and media_name', body: fax({ media_name: 'doc' }), status: 422, pointer: '/media_name' },
  { name: 'quality unknown', body: fax({ quality: 'ultra' }), status: 422, pointer: '/quality' },
  {
    name: 'black_threshold 0',
    body: fax({ monochrome: true, black_threshold: 0 }),
    status: 422,
    pointer: '/black_threshold',
  },
  {
    name: 'black_threshold as text',
    body: fax({ monochrome: true, black_threshold: '95' }),
    status: 422,
    pointer: '/black_threshold',
  },
  { name: 't38_enabled as "yes"', body: fax({ t38_enabled: 'yes' }), status: 422, pointer: '/t38_enabled' },
  {
    name: 'client_state not base64',
    body: fax({ client_state: 'not base64!' }),
    status: 422,
    pointer: '/client_state',
  },
  {
    name: 'from_display_name with markup',
    body: fax({ from_display_name: '<script>x</script>' }),
    status: 422,
    pointer: '/from_display_name',
  },
  {
    name: 'from_display_name with a bidi override',
    body: fax({ from_display_name: 'Bank\u202eknaB' }),
    status: 422,
    pointer: '/from_display_name',
  },
  {
    name: 'a __proto__ field',
    raw: `{"__proto__": {"admin": true}, ${JSON.stringify(SEED_FAX).slice(1)}`,
    status: 400,
  },
  {
    name: 'a constructor field',
    body: fax({ constructor: { prototype: { x: 1 } } }),
    status: 422,
    pointer: '/constructor',
  },
  { name: 'an unknown field', body: fax({ priority_boost: 9 }), status: 422, pointer: '/priority_boost' },
  {
    name: 'connection_id with a newline',
    body: fax({ connection_id: '123\n456' }),
    status: 422,
    pointer: '/connection_id',
  },
  { name: 'connection_id empty', body: fax({ connection_id: '' }), status: 422, pointer: '/connection_id' },
  {
    name: 'webhook_url not a URL',
    body: fax({ webhook_url: 'not a url' }),
    status: 422,
    pointer: '/webhook_url',
  },
  {
    name: 'an Idempotency-Key of 300 characters',
    body: SEED_FAX,
    headers: { ...JSON_TYPE, 'idempotency-key': 'k'.repeat(300) },
    status: 422,
    parameter: 'Idempotency-Key',
  },
  {
    name: 'no bearer token',
    body: SEED_FAX,
    headers: { ...JSON_TYPE, authorization: '' },
    status: 401,
    code: '10009',
  },
  {
    name: 'a wrong bearer token',
    body: SEED_FAX,
    headers: { ...JSON_TYPE, authorization: 'Bearer nope' },
    status: 401,
    code: '10009',
  },
  {
    name: 'a path escaping /faxes',
    method: 'GET',
    path: '/v2/faxes/..%2F..%2Fetc%2Fpasswd',
    status: 404,
    code: '10005',
  },
  { name: 'an id 10 kB long', method: 'GET', path: `/v2/faxes/${'x'.repeat(10_000)}`, status: 404 },
  { name: 'DELETE on the collection', method: 'DELETE', path: '/v2/faxes', status: 405 },
];

function producerRequest(pipeline: TestPipeline, c: Case) {
  const headers = { authorization: `Bearer ${TOKEN}`, ...(c.headers ?? JSON_TYPE) };
  if (headers.authorization === '') delete (headers as Record<string, string>).authorization;
  const method = c.method ?? 'POST';
  return fetch(`${pipeline.producerUrl}${c.path ?? '/v2/faxes'}`, {
    method,
    headers,
    ...(method === 'GET' || method === 'DELETE' ? {} : { body: c.raw ?? JSON.stringify(c.body) }),
  });
}

test('hostile and malformed requests to the producer API get their answers, and nothing is queued', async (t) => {
  const pipeline = await startPipeline(t, {
    worker: false,
    env: { FAX_API_TOKEN: TOKEN, FAX_MEDIA_URL_HOSTS: 'www.w3.org,*.example.com,e.com' },
  });
  t.true(PRODUCER_CASES.length >= 40, `${PRODUCER_CASES.length} producer cases`);
  // Every case is checked; the mismatches are reported together.
  const mismatches: string[] = [];
  for (const c of PRODUCER_CASES) {
    const response = await producerRequest(pipeline, c);
    const text = await response.text();
    const wrong = (what: string) =>
      mismatches.push(`${c.name}: ${what} (${response.status} ${text.slice(0, 160)})`);
    if (response.status !== c.status) wrong(`status ${response.status}, expected ${c.status}`);
    if (/at .*\.ts:\d+|node_modules|Error:/.test(text)) wrong('internals in the answer');
    if (c.status === 405) continue;
    const errors = (JSON.parse(text) as { errors?: { code: string; source?: Record<string, string> }[] })
      .errors;
    if (!Array.isArray(errors) || errors.length === 0) wrong('not in Telnyx error shape');
    if (c.code && errors?.[0]?.code !== c.code) wrong(`code ${errors?.[0]?.code}, expected ${c.code}`);
    if (c.pointer && !errors?.some((e) => e.source?.pointer === c.pointer))
      wrong(`does not name ${c.pointer}`);
    if (c.parameter && errors?.[0]?.source?.parameter !== c.parameter) wrong(`does not name ${c.parameter}`);
    const detail = (errors?.[0] as { detail?: string } | undefined)?.detail ?? '';
    if (c.detail && !c.detail.test(detail)) wrong(`detail ${JSON.stringify(detail)}, expected ${c.detail}`);
  }
  t.deepEqual(mismatches, []);
  const queue = new Queue(FAX_QUEUE, { connection: pipeline.redis, prefix: pipeline.keys.bullPrefix });
  t.teardown(() => queue.close());
  t.is(
    Object.values(await queue.getJobCounts()).reduce((a, b) => a + b, 0),
    0,
    'no job',
  );
  t.deepEqual(await pipeline.redis.keys(`${pipeline.keys.prefix}:fax:*`), [], 'no fax record');
  t.is(await pipeline.redis.xlen(pipeline.keys.stream), 0, 'nothing published');
});

test('hostile and malformed webhooks get their answers; nothing is published but one replayed event, once', async (t) => {
  const pipeline = await startPipeline(t, { worker: false });
  const now = Math.floor(Date.now() / 1000);
  const event = (payload: Record<string, unknown>, id = randomUUID()) =>
    JSON.stringify({
      data: {
        event_type: 'fax.delivered',
        id,
        occurred_at: new Date().toISOString(),
        record_type: 'event',
        payload,
      },
      meta: { attempt: 1 },
    });
  const good = event({ fax_id: 'not-ours', status: 'delivered' });
  const sign = (body: string, at = now) => pipeline.simulator.signerHeaders(body, at);
  const cases: { name: string; body: string; headers: Record<string, string>; status: number }[] = [
    { name: 'no signature', body: good, headers: {}, status: 401 },
    {
      name: 'a garbage signature',
      body: good,
      headers: { 'telnyx-signature-ed25519': '!!!', 'telnyx-timestamp': String(now) },
      status: 401,
    },
    { name: "another body's signature", body: good, headers: sign(event({ fax_id: 'x' })), status: 401 },
    { name: 'a timestamp 10 minutes old', body: good, headers: sign(good, now - 600), status: 401 },
    { name: 'a timestamp 10 minutes ahead', body: good, headers: sign(good, now + 600), status: 401 },
    {
      name: 'a timestamp that is not a number',
      body: good,
      headers: { ...sign(good), 'telnyx-timestamp': 'yesterday' },
      status: 401,
    },
    { name: 'signed, not JSON', body: 'hello', headers: sign('hello'), status: 400 },
    { name: 'signed JSON without data', body: '{"meta": {}}', headers: sign('{"meta": {}}'), status: 400 },
    {
      name: 'an event_type of 5 kB',
      body: good.replace('fax.delivered', 'x'.repeat(5000)),
      headers: sign(good.replace('fax.delivered', 'x'.repeat(5000))),
      status: 400,
    },
    { name: 'a 1 MB body', body: `{"x":"${'a'.repeat(1_000_000)}"}`, headers: {}, status: 413 },
  ];
  for (const c of cases) {
    const response = await fetch(pipeline.webhookUrl, { method: 'POST', headers: c.headers, body: c.body });
    t.is(response.status, c.status, c.name);
    t.false(/at .*\.ts:\d+|node_modules/.test(await response.text()), `${c.name}: no internals`);
  }
  t.is(await pipeline.redis.xlen(pipeline.keys.stream), 0, 'nothing published');

  // A replayed request within the window is acknowledged (Telnyx retries must succeed) but taken once.
  const headers = sign(good);
  for (const expected of ['published', 'duplicate']) {
    const response = await fetch(pipeline.webhookUrl, { method: 'POST', headers, body: good });
    t.is(response.status, 200);
    t.like(await response.json(), { result: expected });
  }
  t.is(await pipeline.redis.xlen(pipeline.keys.stream), 1);
});
