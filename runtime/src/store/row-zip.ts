import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * Checkpoint states compressed by the store itself (issue 18, W4). Postgres compresses a value
 * only when its row passes about 2 KB, and a checkpoint state is about 1-2 KB of JSON: stored as
 * it was, it cost its whole text at every step. Each state is deflated (raw deflate, zlib) with a
 * preset dictionary of the strings every state (and envelope) repeats: the scheduler's, the
 * ledger's and the usage's shapes, envelope types, field names and actor paths. The dictionary is
 * what makes a small value compress: alone, a 1.5 KB state has too little of itself to refer back
 * to. (Journal rows are deflated against their run's first rows instead: ./journal-zip.ts.)
 *
 * The dictionary is part of the stored format: states deflated with {@link STATE_DICT_V1} are
 * the checkpoints' `zstate`; another dictionary would need a marker of its own, read beside this
 * one, never a change of this one.
 */
/**
 * Pieces of a state as the run supervisor writes it (`JSON.stringify`, its keys in this order),
 * most common last: deflate finds the nearest match first.
 */
const STATE_PIECES = [
  '{"v":1,"step":',
  ',"sched":{"nodes":{',
  '":{"status":"pending","iteration":0,"attempt":0}',
  '":{"status":"failed","iteration":1,"attempt":1,"startedAt":"',
  '":{"status":"skipped","iteration":0,"attempt":0}',
  '","error":{"code":"AO_',
  '"},"waits":{"',
  '","kind":"interrupt","prompt":"',
  '"closedWaits":["supervisor/',
  '"edges":["taken","not_taken","unresolved"],"deferred":[],"outputs":{},"finished":false}',
  ',"$refs":[{"path":["sched","outputs","',
  '"],"id":"',
  '","field":["output"]}',
  ',"deadline":',
  ',"live":[{"node":"',
  '","name":"',
  '","startId":"',
  ',"usage":{"inputTokens":',
  ',"outputTokens":',
  ',"totalTokens":',
  ',"llmCalls":',
  ',"toolCalls":',
  ',"perTool":{"',
  ',"ledger":{"used":{"tokens":',
  ',"usd":0,"tools":',
  '},"byNode":{"',
  '":{"tokens":',
  '},"reserved":{}}}',
  '":{"status":"running","iteration":1,"attempt":1,"startedAt":"2026-',
  '":{"status":"succeeded","iteration":1,"attempt":1,"startedAt":"2026-',
  'T00:00:00.000Z","finishedAt":"2026-',
];
/** The preset dictionary of `zstate` (never changed: another would need a marker of its own). */
export const STATE_DICT_V1 = Buffer.from(STATE_PIECES.join(''), 'utf8');

/** Small rows deflate in a 4 KiB window (cheaper to set up); a larger one in the full 32 KiB. */
const SMALL = 8_192;

/** A state's JSON deflated with the dictionary. */
export function zipState(text: string): Buffer {
  const buf = Buffer.from(text, 'utf8');
  const small = buf.length <= SMALL;
  return deflateRawSync(buf, { level: 3, dictionary: STATE_DICT_V1, windowBits: small ? 12 : 15, memLevel: small ? 8 : 9 });
}

/** The state {@link zipState} deflated. */
export function unzipState(bytes: Uint8Array): string {
  return inflateRawSync(bytes, { dictionary: STATE_DICT_V1, windowBits: 15 }).toString('utf8');
}
