import { z } from 'zod';
import { EnvelopeSchema, RUN_STATUSES } from '@ao/runtime';
import { RunSummary } from '../http/views.js';

/**
 * What the gateway's WebSocket streams send: one JSON object per text frame, a union on `kind`.
 * Clients send nothing (anything they send is ignored).
 *
 * `GET /runs/:id/stream?after=seq` sends `envelope` frames in seq order (the stored history after
 * `after`, then the live tail, with no gap and no duplicate), then one `end` frame once the run
 * has ended, and closes (1000). `GET /stream` sends `ready` once subscribed, then a `run` frame
 * for every status change of any run. Either may send `behind` (then close 4001) when the client
 * reads too slowly: reconnect with `after` = the last seq received.
 */
const Code = z.string();
const ErrorBody = z.object({ code: Code, message: z.string() });

export const EnvelopeFrame = z.object({ kind: z.literal('envelope'), envelope: EnvelopeSchema });
export const EndFrame = z.object({ kind: z.literal('end'), runId: z.string(), status: z.enum(RUN_STATUSES), lastSeq: z.number().int() });
export const BehindFrame = z.object({
  kind: z.literal('behind'),
  /** The last seq sent before giving up (null on `/stream`): resume with `after` = the last one you received. */
  lastSeq: z.number().int().nullable(),
  error: ErrorBody,
});
export const ReadyFrame = z.object({ kind: z.literal('ready') });
/** A run whose status or progress changed; `lastSeq` orders the frames of one run (higher is newer). */
export const RunFrame = z.object({
  kind: z.literal('run'),
  cause: z.string(),
  run: RunSummary.extend({ lastSeq: z.number().int(), updatedAt: z.string() }),
});
export const ErrorFrame = z.object({ kind: z.literal('error'), error: ErrorBody });
/**
 * A piece of an LLM answer being written (ephemeral: no seq, never in the log; the `llm.response`
 * envelope that follows holds the whole answer). Best effort: dropped, never queued, when the
 * client's socket is full.
 */
export const DeltaFrame = z.object({
  kind: z.literal('delta'),
  runId: z.string(),
  key: z.string(),
  actor: z.string(),
  attempt: z.number().int(),
  index: z.number().int(),
  text: z.string(),
});

export const StreamFrame = z.discriminatedUnion('kind', [EnvelopeFrame, EndFrame, BehindFrame, ReadyFrame, RunFrame, ErrorFrame, DeltaFrame]);
export type StreamFrameT = z.infer<typeof StreamFrame>;
export type RunFrameT = z.infer<typeof RunFrame>;

/** WebSocket close codes the streams use (4000-4999 are the application's). */
export const CLOSE = {
  /** The run ended; its last frame was `end`. */
  normal: 1000,
  /** The server is shutting down. */
  goingAway: 1001,
  /** An unexpected server error; the frame before says what. */
  error: 1011,
  /** The client fell behind; the frame before is `behind`. */
  behind: 4001,
} as const;
