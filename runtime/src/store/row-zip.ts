import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * Checkpoint states compressed by the store itself (issue 18, W4). Postgres compresses a value
 * only when its row passes about 2 KB, and a checkpoint state is about 1-2 KB of JSON: stored as
 * it was, it cost its whole text at every step. Each state is deflated (raw deflate, zlib) with a
 * preset dictionary of the strings every state (and envelope) repeats: the scheduler's, the
 * ledger's and the usage's shapes, envelope types, field names and actor paths. The dictionary is
 * what makes a small value compress: alone, a 1.5 KB state has too little of itself to refer back
 * to. (Journal rows are deflated against their run's first rows instead: ./journal-zip.ts.)
 *
 * The dictionary is part of the stored format: states deflated with {@link ZIP_DICT_V1} are the
 * checkpoints' `zstate`; another dictionary would need a marker of its own, read beside this one,
 * never a change of this one.
 */
const TYPES = [
  'run.started', 'run.finished', 'run.failed', 'run.cancelled', 'node.failed', 'node.skipped', 'node.retry', 'branch.start', 'branch.completed', 'branch.failed',
  'loop.iterated', 'budget.release', 'budget.waiting', 'budget.denied', 'question.asked', 'signal.received', 'tool.call', 'tool.result', 'llm.request', 'llm.response',
];
const PIECES = [
  ...TYPES.map((t) => `"${t}"`),
  '{"traceparent":"00-',
  '"toolCalls":[{"id":"call_","name":"","arguments":{}}],"finishReason":"tool_calls"}',
  '{"role":"assistant","content":"","toolCalls":[]},{"role":"tool","toolCallId":"call_","content":"',
  '"profile":"default","maxTokens":1024,"messages":[{"role":"system","content":"',
  'You are a pipeline agent: do your step of the work and hand on a clear result.',
  '"},{"role":"user","content":"Node: ',
  ' (pipeline)\\nRun input:\\n{}\\n\\nUpstream outputs:\\n## ',
  '"tools":[],"hash":"',
  '"usage":{"inputTokens":',
  ',"outputTokens":',
  ',"totalTokens":',
  ',"llmCalls":1,"toolCalls":1,"perTool":{',
  '"finishReason":"stop"}',
  '"context":{"input":{},"outputs":{',
  '"iterations":{',
  '"upstream":[',
  '"output":{"text":"',
  '"tools":[{"name":"',
  '","args":{},"ok":true,"result":{"ok":true}}]}',
  '{"kind":"tool","key":"supervisor/',
  '{"kind":"llm","key":"supervisor/',
  '","promptTokens":',
  ',"maxTokens":1024,"model":"default"}',
  '","reservation":{"node":"',
  '","actor":"supervisor/',
  '","tokens":0,"usd":0,"tool":"',
  '","tokens":0,"usd":0,"model":"',
  '"name":"noop","args":{},"hash":"',
  '"name":"noop","ok":true,"result":{"ok":true}}',
  '"node":"',
  '","iteration":1,"attempt":1,',
  '["node.completed","supervisor/',
  '["node.start","supervisor","supervisor/',
  '["budget.settle","supervisor/',
  '","supervisor/budget",',
  '["budget.granted","supervisor/budget","supervisor/',
  '["budget.request","supervisor/',
  '["tool.call","supervisor/',
  '","tool/noop",',
  '["tool.result","tool/noop","supervisor/',
  '["llm.request","supervisor/',
  '","llm/default",',
  '["llm.response","llm/default","supervisor/',
  '{"key":"supervisor/',
];
/** Checkpoint states: the run supervisor's state, its scheduler's and its ledger's shapes. */
const STATE_PIECES = [
  '{"v":1,"live":[{"name":"","node":"","startId":""}],"step":',
  ',"$refs":[{"path":["sched","outputs",""],"id":"","field":["output"]}]',
  ',"sched":{"nodes":{"":{"status":"pending","attempt":0,"iteration":0},"":{"status":"succeeded","attempt":1,"iteration":1,"startedAt":"',
  '.000Z","finishedAt":"',
  '"},"":{"status":"running","attempt":1,"iteration":',
  '"edges":["taken","unresolved","skipped"],"outputs":{},"deferred":[],"finished":false}',
  ',"usage":{"inputTokens":,"outputTokens":,"totalTokens":,"llmCalls":,"toolCalls":,"perTool":{"noop":}}',
  ',"ledger":{"used":{"tokens":,"usd":0,"tools":,"perTool":{"noop":}},"byNode":{"":{"tokens":,"usd":0,"tools":,"perTool":{"noop":}}},"reserved":{}}',
  ',"deadline":',
];
/** The preset dictionary of format 4 (most common strings last: deflate finds the nearest match first). */
export const ZIP_DICT_V1 = Buffer.from([...STATE_PIECES, ...PIECES].join(''), 'utf8');

/** Small rows deflate in a 4 KiB window (cheaper to set up); a larger one in the full 32 KiB. */
const SMALL = 8_192;

/** `text` deflated with the format's dictionary. */
export function zipText(text: string): Buffer {
  const buf = Buffer.from(text, 'utf8');
  const small = buf.length <= SMALL;
  return deflateRawSync(buf, { level: 3, dictionary: ZIP_DICT_V1, windowBits: small ? 12 : 15, memLevel: small ? 8 : 9, strategy: constants.Z_DEFAULT_STRATEGY });
}

/** The text {@link zipText} deflated. */
export function unzipText(bytes: Uint8Array): string {
  return inflateRawSync(bytes, { dictionary: ZIP_DICT_V1, windowBits: 15 }).toString('utf8');
}
