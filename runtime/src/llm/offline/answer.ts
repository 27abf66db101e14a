import { clip, digestValue, hash8 } from './digest.js';
import type { PromptContext } from './prompt.js';

/** Angles a swarm branch takes, so parallel branches say different things. */
const ANGLES = [
  'evidence and sources',
  'risks and failure modes',
  'costs and trade-offs',
  'alternatives and prior art',
  'implementation steps',
  'open questions',
] as const;

const POINTS = [
  'state the assumptions explicitly',
  'tie each claim to an upstream source',
  'keep the scope to what the instructions ask',
  'name the next concrete step',
  'flag what is still uncertain',
  'prefer the simplest option that works',
  'check the numbers against the input',
] as const;

const REVISE_POINTS = [
  'the opening does not state the main point',
  'a claim lacks a source',
  'the structure jumps between topics',
  'the conclusion repeats the introduction',
  'a term is used before it is defined',
] as const;

/** Words in the system message that make a reviewer out of the offline model. */
const APPROVAL_WORD = /\bAPPROVED\b/;

/**
 * The final text of the offline model: a deterministic answer built from the prompt context.
 * It names the node, digests the run input, the upstream outputs and tool results it builds on,
 * and for a reviewer asked to reply APPROVED approves from the second iteration on, so example
 * loops terminate visibly.
 */
export function composeAnswer(ctx: PromptContext, model: string): string {
  const seed = hash8([ctx.instructions, ctx.nodeId, ctx.input ?? null, ctx.iteration, ctx.branch ?? null]);
  const body = [
    `[offline ${model}] ${ctx.nodeId}${ctx.agentKind ? ` (${ctx.agentKind})` : ''}${ctx.iteration > 1 ? `, iteration ${ctx.iteration}` : ''}: ${task(ctx)}`,
    ...(ctx.branch ? [`Branch ${ctx.branch.index} of ${ctx.branch.of}, angle: ${angle(ctx.branch.index)}.`] : []),
    `Input: ${digestValue(ctx.input)}.`,
    ...(ctx.upstream.length ? [`Builds on: ${ctx.upstream.map((u) => `${u.nodeId} (${clip(u.text, 60)})`).join('; ')}.`] : []),
    ...(ctx.toolResults.length ? [`Tool results: ${ctx.toolResults.map((t) => `${t.name} -> ${toolDigest(t.content)}`).join('; ')}.`] : []),
    `Points: ${pick(POINTS, seed, 3)
      .map((p, i) => `${i + 1}) ${p}`)
      .join(' ')}.`,
  ].join('\n');

  if (!APPROVAL_WORD.test(ctx.instructions)) return body;
  if (ctx.iteration >= 2) return `APPROVED: the latest version addresses the earlier points.\n${body}`;
  return `REVISE: ${pick(REVISE_POINTS, seed, 2)
    .map((p, i) => `${i + 1}) ${p};`)
    .join(' ')} 3) tighten the wording.\n${body}`;
}

function task(ctx: PromptContext): string {
  return ctx.instructions.trim() ? `answering "${clip(ctx.instructions, 100)}"` : 'answering the request';
}

function angle(index: number): string {
  return ANGLES[(Math.max(1, index) - 1) % ANGLES.length] ?? ANGLES[0];
}

/** `n` distinct entries of `list`, chosen by `seed`, in a stable order. */
function pick<T>(list: readonly T[], seed: string, n: number): T[] {
  const start = parseInt(seed.slice(0, 6), 16) % list.length;
  return Array.from({ length: Math.min(n, list.length) }, (_, i) => list[(start + i * 2) % list.length] as T);
}

/** A tool result in a few words: JSON objects by their keys, result lists by count. */
function toolDigest(content: string): string {
  let value: unknown = content;
  try {
    value = JSON.parse(content) as unknown;
  } catch {
    // Not JSON: digest the text as it is.
  }
  const results = (value as { results?: unknown } | null)?.results;
  if (Array.isArray(results)) {
    const first = (results[0] as { title?: unknown } | undefined)?.title;
    return `${results.length} result${results.length === 1 ? '' : 's'}${typeof first === 'string' ? `, first "${clip(first, 50)}"` : ''}`;
  }
  // Offline stand-ins mark themselves; say so once instead of repeating their boilerplate note.
  const obj = value as Record<string, unknown> | null;
  if (obj && typeof obj === 'object' && !Array.isArray(obj) && obj.offline === true) {
    const { offline: _o, note: _n, ...rest } = obj;
    return `(offline) ${digestValue(rest, 90)}`;
  }
  return digestValue(value, 90);
}
