import type { FieldProblem } from './fax-request.ts';

/**
 * Errors in Telnyx's own shape (`{"errors": [{code, title, detail, source}]}`), with Telnyx's codes,
 * so clients written against Telnyx understand our answers too.
 */
export interface TelnyxErrorItem {
  readonly code: string;
  readonly title: string;
  readonly detail?: string;
  readonly source?: { readonly pointer?: string; readonly parameter?: string };
}

export interface TelnyxErrorBody {
  readonly errors: readonly TelnyxErrorItem[];
}

export const TELNYX_ERRORS = {
  invalidPhoneNumber: { code: '10016', title: 'Phone number must be in +E.164 format' },
  invalidUrl: { code: '10003', title: 'Invalid URL' },
  missingParameter: { code: '10004', title: 'Missing required parameter' },
  notFound: { code: '10005', title: 'Resource not found' },
  unexpected: { code: '10007', title: 'Unexpected error' },
  authenticationFailed: { code: '10009', title: 'Authentication failed' },
  tooManyRequests: { code: '10011', title: 'Too many requests' },
  unsupportedMediaType: { code: '10014', title: 'Unsupported Media Type' },
  badRequest: { code: '10015', title: 'Bad Request' },
  invalidValue: { code: '10015', title: 'Invalid value' },
  payloadTooLarge: { code: '10015', title: 'Request body too large' },
  unavailable: { code: '10007', title: 'Service unavailable' },
  conflict: { code: '10015', title: 'Conflict' },
} as const satisfies Record<string, { code: string; title: string }>;

export function errorBody(
  kind: keyof typeof TELNYX_ERRORS,
  detail: string,
  pointer?: string,
  parameter?: string,
): TelnyxErrorBody {
  const item: TelnyxErrorItem = {
    ...TELNYX_ERRORS[kind],
    detail,
    ...(pointer ? { source: { pointer } } : parameter ? { source: { parameter } } : {}),
  };
  return { errors: [item] };
}

const PHONE_FIELDS = new Set(['/to', '/from']);
const URL_FIELDS = new Set(['/media_url', '/webhook_url']);

/** One Telnyx error per invalid field, each naming it in `source.pointer`. */
export function fieldErrors(problems: readonly FieldProblem[]): TelnyxErrorBody {
  return {
    errors: problems.map((problem) => {
      const kind = problem.detail.includes('is required')
        ? 'missingParameter'
        : PHONE_FIELDS.has(problem.pointer)
          ? 'invalidPhoneNumber'
          : URL_FIELDS.has(problem.pointer)
            ? 'invalidUrl'
            : 'invalidValue';
      return { ...TELNYX_ERRORS[kind], detail: problem.detail, source: { pointer: problem.pointer } };
    }),
  };
}
