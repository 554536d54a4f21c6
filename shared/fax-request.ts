import { z } from 'zod';
import { isE164, isFaxDestination } from './phone.ts';
import { FAX_PRIORITIES } from './priority.ts';
import { nextOpening, sendingWindowSchema } from './sending-window.ts';

/**
 * The fields of Telnyx's `SendFaxRequest` (../shared/telnyx/fax-openapi.yml), validated once for
 * every way a fax comes in: the library, the HTTP API and the CLI.
 */
const httpUrl = z
  .string({ error: 'must be a string' })
  .max(2048, 'must be at most 2048 characters')
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A required string: missing is "is required", anything else but a string is "must be a string". */
const requiredString = () =>
  z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') });

export const QUALITIES = ['normal', 'high', 'very_high', 'ultra_light', 'ultra_dark'] as const;
export const PREVIEW_FORMATS = ['pdf', 'tiff'] as const;

const booleanFields = ['monochrome', 't38_enabled', 'store_media', 'store_preview'] as const;
const integerFields = ['black_threshold', 'ttl_seconds'] as const;

/** The fields of Telnyx's own send request (`SendFaxRequest`), with Telnyx's rules. */
const telnyxShape = {
  connection_id: requiredString()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .regex(/^[!-~]+$/, 'must be printable characters without spaces'),
  to: requiredString().refine(
    isFaxDestination,
    'must be an E.164 number (+13125550100) or a SIP URI (sip:user@host)',
  ),
  from: requiredString().refine(isE164, 'must be an E.164 number such as +13125550100'),
  media_url: httpUrl.optional(),
  media_name: z
    .string({ error: 'must be a string' })
    .min(1, 'must not be empty')
    .max(255, 'must be at most 255 characters')
    .optional(),
  quality: z.enum(QUALITIES, { error: `must be one of ${QUALITIES.join(', ')}` }).optional(),
  t38_enabled: z.boolean({ error: 'must be a boolean' }).optional(),
  monochrome: z.boolean({ error: 'must be a boolean' }).optional(),
  black_threshold: z
    .number({ error: 'must be an integer from 1 to 100' })
    .int('must be an integer from 1 to 100')
    .min(1, 'must be an integer from 1 to 100')
    .max(100, 'must be an integer from 1 to 100')
    .optional(),
  store_media: z.boolean({ error: 'must be a boolean' }).optional(),
  store_preview: z.boolean({ error: 'must be a boolean' }).optional(),
  preview_format: z.enum(PREVIEW_FORMATS, { error: 'must be pdf or tiff' }).optional(),
  from_display_name: z
    .string({ error: 'must be a string' })
    .max(128, 'must be at most 128 characters')
    .regex(/^[A-Za-z0-9 \-_~!.+]*$/, 'may hold only letters, digits, spaces and -_~!.+')
    .optional(),
  client_state: z
    .string({ error: 'must be a string' })
    .max(4096, 'must be at most 4096 characters')
    .regex(base64, 'must be valid base64')
    .optional(),
  webhook_url: httpUrl.optional(),
};

/** Our fields, never sent to Telnyx. */
const ourShape = {
  /** Ours, not Telnyx's: do not send before this moment (ISO 8601 with an offset or Z). */
  send_at: z.iso
    .datetime({
      offset: true,
      error: 'must be an ISO 8601 time with an offset, e.g. 2026-12-01T09:00:00Z',
    })
    .optional(),
  /**
   * Ours, not Telnyx's: office hours in the recipient's time zone (shared/sending-window.ts); the
   * fax is held while the window is closed.
   */
  sending_window: sendingWindowSchema.optional(),
  /** Ours, not Telnyx's: an unsent fax fails (`expired`) this long after it was due (default: the retry policy's). */
  ttl_seconds: z
    .number({ error: 'must be a whole number of seconds' })
    .int('must be a whole number of seconds')
    .min(1, 'must be at least 1')
    .max(30 * 86_400, 'must be at most 30 days (2592000)')
    .optional(),
  /** Ours, not Telnyx's: `high` goes first when channels are scarce, `bulk` last (default `normal`). */
  priority: z.enum(FAX_PRIORITIES, { error: `must be one of ${FAX_PRIORITIES.join(', ')}` }).optional(),
  /**
   * Ours, not Telnyx's: the caller's metadata, carried on every stream entry of the fax and never
   * sent to Telnyx. A flat object of string keys and values.
   */
  tags: z
    .record(
      z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'keys are 1 to 64 letters, digits or _.-'),
      z.string({ error: 'values must be strings' }).max(256, 'values are at most 256 characters'),
      { error: 'must be an object of string keys and string values' },
    )
    .refine((tags) => Object.keys(tags).length <= 20, 'at most 20 tags')
    .optional(),
};

const unknownField = {
  error: (issue: { code: string }) =>
    issue.code === 'unrecognized_keys' ? 'is not a field of a fax request' : undefined,
};

type DocumentField = 'media_url' | 'media_name' | 'contents';

/** Exactly one document, of `fields` (`contents`: a file in a multipart request to Telnyx). */
const oneDocument =
  (fields: readonly DocumentField[]) =>
  (
    fax: { media_url?: string; media_name?: string; store_media?: boolean; contents?: unknown },
    ctx: z.RefinementCtx,
  ) => {
    const given = fields.filter((field) => fax[field] !== undefined);
    if (given.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['media_url'],
        message: `is required (or ${fields.slice(1).join(', or ')})`,
      });
    }
    for (const field of given.slice(1)) {
      ctx.addIssue({ code: 'custom', path: [field], message: `cannot be sent together with ${given[0]}` });
    }
    if (fax.store_media && fax.media_name !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['store_media'], message: 'cannot be used with media_name' });
    }
  };

/** A fax request as we take it: Telnyx's fields and ours (schedule, window, priority, tags). */
export const sendFaxRequestSchema = z
  .strictObject({ ...telnyxShape, ...ourShape }, unknownField)
  .superRefine(oneDocument(['media_url', 'media_name']));

/** A file sent as `contents` in a multipart request to Telnyx. */
export interface UploadedDocument {
  readonly name: string;
  readonly type: string;
  readonly size: number;
}

/** Telnyx's maximum for a `contents` upload. */
export const MAX_CONTENTS_BYTES = 20 * 2 ** 20;

/**
 * What Telnyx itself accepts at `POST /v2/faxes` (the simulator checks requests with it): its own
 * fields only, and a `contents` file instead of a link in a multipart request.
 */
export const telnyxSendFaxSchema = z
  .strictObject(
    {
      ...telnyxShape,
      contents: z
        .custom<UploadedDocument>(
          (value) => typeof value === 'object' && value !== null && 'size' in value,
          'must be a file (multipart/form-data)',
        )
        .refine((file) => file.size <= MAX_CONTENTS_BYTES, 'must be at most 20 MB')
        .optional(),
    },
    unknownField,
  )
  .superRefine(oneDocument(['media_url', 'media_name', 'contents']));

export type SendFaxRequest = z.infer<typeof sendFaxRequestSchema>;

/** The earliest a fax may be sent (ms): its `send_at`, then the next opening of its sending window. */
export function firstSendTime(request: SendFaxRequest, now: number): number {
  const due = Math.max(now, request.send_at ? Date.parse(request.send_at) : now);
  const window = request.sending_window;
  return window ? nextOpening(window, due) : due;
}

/** The request as Telnyx gets it: without our own fields (schedule, window, priority, tags). */
export function telnyxFields(request: SendFaxRequest) {
  const { tags: _t, priority: _p, send_at: _s, sending_window: _w, ttl_seconds: _ttl, ...telnyx } = request;
  return telnyx;
}

/** One invalid field: a JSON pointer into the request and what is wrong with it. */
export interface FieldProblem {
  readonly pointer: string;
  readonly detail: string;
}

export type ParseResult =
  | { readonly ok: true; readonly fax: SendFaxRequest }
  | { readonly ok: false; readonly problems: readonly FieldProblem[] };

/** Validates a fax request; never throws. */
export function parseSendFaxRequest(input: unknown): ParseResult {
  return parseWith(sendFaxRequestSchema, input);
}

/** Validates a request to Telnyx's `POST /v2/faxes` as Telnyx would; never throws. */
export function parseTelnyxSendFax(
  input: unknown,
): { readonly ok: true } | { readonly ok: false; readonly problems: readonly FieldProblem[] } {
  return parseWith(telnyxSendFaxSchema, input);
}

function parseWith<T>(
  schema: z.ZodType<T>,
  input: unknown,
):
  | { readonly ok: true; readonly fax: T }
  | { readonly ok: false; readonly problems: readonly FieldProblem[] } {
  const parsed = schema.safeParse(input);
  if (parsed.success) return { ok: true, fax: parsed.data };
  const problems: FieldProblem[] = [];
  // Cross-field rules only run once every field is valid; report a missing document up front anyway.
  const fields = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
  if (fields.media_url === undefined && fields.media_name === undefined && fields.contents === undefined) {
    problems.push({ pointer: '/media_url', detail: 'media_url is required (or media_name)' });
  }
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const field = [...issue.path, key].join('/');
        problems.push({ pointer: `/${field}`, detail: `${field.replaceAll('/', '.')} ${issue.message}` });
      }
      continue;
    }
    const field = issue.path.join('/');
    problems.push({
      pointer: field === '' ? '' : `/${field}`,
      detail: field === '' ? issue.message : `${field} ${issue.message}`,
    });
  }
  const unique = problems.filter((p, i) => problems.findIndex((q) => q.pointer === p.pointer) === i);
  return { ok: false, problems: unique };
}

/**
 * Form bodies (`--data-urlencode`) carry every value as a string: turn the boolean and integer fields
 * into their JSON types, leaving anything unrecognisable for the schema to reject by name.
 */
export function coerceFormFields(form: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...form };
  for (const field of booleanFields) {
    const value = out[field];
    if (value === 'true') out[field] = true;
    else if (value === 'false') out[field] = false;
  }
  for (const field of integerFields) {
    const value = out[field];
    if (typeof value === 'string' && /^-?\d+$/.test(value)) out[field] = Number(value);
  }
  return out;
}
