import { z } from 'zod';

/**
 * Telnyx echoes `client_state` in every webhook of a fax. We wrap the caller's own value with our fax
 * id and attempt, so a webhook finds its fax even when it arrives before the worker has recorded the
 * Telnyx fax id, and unwrap it again before any consumer sees it.
 */
const ourState = z.object({
  pipeline_fax_id: z.string().min(1),
  attempt: z.number().int().positive(),
  client_state: z.string().optional(),
});

export interface PipelineState {
  readonly faxId: string;
  readonly attempt: number;
  /** The caller's own client_state, as they sent it (base64). */
  readonly callerState: string | undefined;
}

export function encodeClientState(state: PipelineState): string {
  const body: z.input<typeof ourState> = { pipeline_fax_id: state.faxId, attempt: state.attempt };
  if (state.callerState !== undefined) body.client_state = state.callerState;
  return Buffer.from(JSON.stringify(body)).toString('base64');
}

/** Our state from a webhook's client_state; undefined when the fax was not sent by this pipeline. */
export function decodeClientState(value: unknown): PipelineState | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    const parsed = ourState.safeParse(JSON.parse(Buffer.from(value, 'base64').toString('utf8')));
    if (!parsed.success) return undefined;
    return {
      faxId: parsed.data.pipeline_fax_id,
      attempt: parsed.data.attempt,
      callerState: parsed.data.client_state,
    };
  } catch {
    return undefined;
  }
}
