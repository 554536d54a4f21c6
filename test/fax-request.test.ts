import test from 'ava';
import { coerceFormFields, parseSendFaxRequest } from '../shared/fax-request.ts';

const valid = {
  media_url: 'https://example.com/fax.pdf',
  connection_id: '1232154810234',
  to: '+13129457420',
  from: '+19459457421',
};

const pointers = (input: unknown) => {
  const result = parseSendFaxRequest(input);
  return result.ok ? [] : result.problems.map((p) => p.pointer);
};

test('the seed request and every optional field of SendFaxRequest are accepted', (t) => {
  const result = parseSendFaxRequest({
    ...valid,
    quality: 'very_high',
    t38_enabled: false,
    monochrome: true,
    black_threshold: 80,
    store_media: true,
    store_preview: true,
    preview_format: 'pdf',
    from_display_name: 'Clinic Front-Desk_1.0+',
    client_state: 'aGF2ZSBhIG5pY2UgZGF5ID1d',
    webhook_url: 'https://example.com/hooks',
  });
  t.true(result.ok);
});

test('a SIP URI is a valid destination', (t) => {
  t.true(parseSendFaxRequest({ ...valid, to: 'sip:fax@example.com' }).ok);
});

test('missing required fields are each named', (t) => {
  t.deepEqual(pointers({}).sort(), ['/connection_id', '/from', '/media_url', '/to']);
  t.deepEqual(pointers({ ...valid, media_url: undefined }), ['/media_url']);
});

test('a connection_id with spaces or control characters is refused (it names a channel-limit scope)', (t) => {
  t.deepEqual(pointers({ ...valid, connection_id: '123\n456' }), ['/connection_id']);
  t.deepEqual(pointers({ ...valid, connection_id: '123 456' }), ['/connection_id']);
});

test('numbers that are not valid E.164 are rejected by field', (t) => {
  t.deepEqual(pointers({ ...valid, to: '3129457420' }), ['/to']);
  t.deepEqual(pointers({ ...valid, from: '+1555' }), ['/from']);
  t.deepEqual(pointers({ ...valid, from: 'sip:me@example.com' }), ['/from']);
  t.deepEqual(pointers({ ...valid, to: '+15550001111' }), ['/to']);
});

test('a number checked before gets the same answer, also once more numbers were checked than are remembered', (t) => {
  for (let round = 0; round < 2; round++) {
    t.deepEqual(pointers({ ...valid, to: '+15550001111' }), ['/to']);
    t.deepEqual(pointers(valid), []);
    // More distinct valid numbers than the checker remembers (10,000): it starts over, still right.
    for (let i = 0; i < 12_000; i++) {
      const to = `+1312${200 + Math.floor(i / 10_000)}${String(i % 10_000).padStart(4, '0')}`;
      if (i % 1000 === 0) t.deepEqual(pointers({ ...valid, to }), []);
      else parseSendFaxRequest({ ...valid, to });
    }
  }
});

test('media_url must be http(s), and media_url with media_name is refused', (t) => {
  t.deepEqual(pointers({ ...valid, media_url: 'ftp://example.com/a.pdf' }), ['/media_url']);
  t.deepEqual(pointers({ ...valid, media_url: 'javascript:alert(1)' }), ['/media_url']);
  t.deepEqual(pointers({ ...valid, media_name: 'doc' }), ['/media_name']);
  t.true(parseSendFaxRequest({ ...valid, media_url: undefined, media_name: 'doc' }).ok);
});

test('enums, ranges and formats follow the spec', (t) => {
  t.deepEqual(pointers({ ...valid, quality: 'best' }), ['/quality']);
  t.deepEqual(pointers({ ...valid, preview_format: 'png' }), ['/preview_format']);
  t.deepEqual(pointers({ ...valid, black_threshold: 0 }), ['/black_threshold']);
  t.deepEqual(pointers({ ...valid, black_threshold: 101 }), ['/black_threshold']);
  t.deepEqual(pointers({ ...valid, black_threshold: 50.5 }), ['/black_threshold']);
  t.deepEqual(pointers({ ...valid, client_state: 'not base64!' }), ['/client_state']);
  t.deepEqual(pointers({ ...valid, from_display_name: 'Name <script>' }), ['/from_display_name']);
  t.deepEqual(pointers({ ...valid, from_display_name: 'x'.repeat(129) }), ['/from_display_name']);
  t.deepEqual(pointers({ ...valid, monochrome: 'yes' }), ['/monochrome']);
});

test('unknown fields are refused by name rather than silently dropped', (t) => {
  const result = parseSendFaxRequest({ ...valid, medai_url: 'x' });
  t.false(result.ok);
  if (!result.ok)
    t.deepEqual(result.problems, [
      { pointer: '/medai_url', detail: 'medai_url is not a field of a fax request' },
    ]);
});

test('form bodies get their booleans and integers, and bad ones still fail by name', (t) => {
  const form = coerceFormFields({
    ...valid,
    monochrome: 'true',
    t38_enabled: 'false',
    black_threshold: '70',
  });
  t.is(form.monochrome, true);
  t.is(form.t38_enabled, false);
  t.is(form.black_threshold, 70);
  t.deepEqual(pointers(coerceFormFields({ ...valid, monochrome: 'maybe' })), ['/monochrome']);
});
