import { createHash } from 'node:crypto';
import { diffLines, diffWordsWithSpace } from 'diff';
import { canonicalJson } from '@ao/graphs';
import type { EnvelopeGist } from '../store/mod.js';

/** Who decided an envelope: the actor that emitted it (an effect's result is the calling actor's). */
export function emitterOf(e: { from: string; to: string }): string {
  return /^(llm|tool)\//.test(e.from) ? e.to : e.from;
}

/** Replace every occurrence of the given run ids with `<run>` (ids differ between a run and its replay). */
export function withoutRunIds(v: unknown, runIds: readonly string[]): unknown {
  if (v === undefined) return undefined;
  let text = JSON.stringify(v);
  for (const id of runIds) text = text.split(id).join('<run>');
  return JSON.parse(text) as unknown;
}

/**
 * An envelope as a decision: type, sender, recipient and payload, with run ids masked. The graph
 * version in `run.started` is left out: a replay runs the code registered now, and checking that
 * code's decisions is the point. So is `ranOn` in a node task's last word (`node.completed`,
 * `branch.failed`, ...): which runtime node ran it is where, not what (a replay runs its tasks on its host).
 */
export function gistOf(e: { seq?: number; type: string; from: string; to: string; payload: unknown }, runIds: readonly string[]): EnvelopeGist {
  let payload = withoutRunIds(e.payload, runIds) ?? null;
  if (e.type === 'run.started' && payload && typeof payload === 'object') {
    payload = without(payload, 'version');
  }
  if (payload && typeof payload === 'object' && 'ranOn' in payload) {
    payload = without(payload, 'ranOn');
  }
  return { seq: e.seq ?? 0, type: e.type, from: e.from, to: e.to, payload };
}

/** An object's own fields but one, in their order (what `{key: _, ...rest}` gives). */
function without(o: object, key: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
}

/** Equal decisions: same type, sender, recipient and payload (ids, seqs and times aside). */
export function sameGist(a: EnvelopeGist, b: EnvelopeGist): boolean {
  return a.type === b.type && a.from === b.from && a.to === b.to && canonicalJson(a.payload) === canonicalJson(b.payload);
}

/** sha256 of a request's canonical JSON: equal content, equal hash, whatever the key order. */
export function contentHash(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex');
}

const MAX_LINES = 40;
const clip = (s: string, n = 160) => (s.length > n ? `${s.slice(0, n)}…` : s);
const show = (v: unknown) => clip(v === undefined ? 'undefined' : JSON.stringify(v));

/** A changed string: a line diff for multi-line text (prompts), an inline word diff otherwise. */
function textDiff(path: string, a: string, b: string): string[] {
  if (a.includes('\n') || b.includes('\n')) {
    const out = [`${path}:`];
    for (const part of diffLines(a, b)) {
      if (!part.added && !part.removed) continue;
      for (const line of part.value.replace(/\n$/, '').split('\n')) out.push(`  ${part.added ? '+' : '-'} ${clip(line)}`);
    }
    return out;
  }
  const inline = diffWordsWithSpace(a, b)
    .map((p) => (p.added ? `{+${p.value}+}` : p.removed ? `[-${p.value}-]` : p.value.length > 60 ? `${p.value.slice(0, 28)}…${p.value.slice(-28)}` : p.value))
    .join('');
  return [`${path}: ${clip(inline, 400)}`];
}

function walk(path: string, a: unknown, b: unknown, out: string[]): void {
  if (out.length >= MAX_LINES) return;
  if (canonicalJson(a) === canonicalJson(b)) return;
  if (typeof a === 'string' && typeof b === 'string') {
    out.push(...textDiff(path, a, b));
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length) out.push(`${path}[${i}]: added ${show(b[i])}`);
      else if (i >= b.length) out.push(`${path}[${i}]: removed ${show(a[i])}`);
      else walk(`${path}[${i}]`, a[i], b[i], out);
    }
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort()) {
      if (!(k in rb)) out.push(`${path}.${k}: removed (was ${show(ra[k])})`);
      else if (!(k in ra)) out.push(`${path}.${k}: added ${show(rb[k])}`);
      else walk(`${path}.${k}`, ra[k], rb[k], out);
    }
    return;
  }
  out.push(`${path}: ${show(a)} → ${show(b)}`);
}

/**
 * What changed from `a` (the original) to `b` (the replay), as lines a person reads: each changed
 * field with its path, long or multi-line text (a prompt) as a line diff, values as `old → new`.
 */
export function describeChange(a: unknown, b: unknown, path = ''): string[] {
  const out: string[] = [];
  walk(path, a, b, out);
  if (out.length >= MAX_LINES) out.splice(MAX_LINES, out.length, '… (more differences not shown)');
  return out.map((l) => (l.startsWith('.') ? l.slice(1) : l));
}

/** The readable difference between two envelopes where a replay diverged. */
export function describeDivergence(actor: string, expected: EnvelopeGist | null, actual: EnvelopeGist | null): string[] {
  if (!expected && actual) return [`${actor} sent ${actual.type} to ${actual.to}; the original sent nothing more from ${actor}`];
  if (expected && !actual) return [`${actor} sent nothing more; the original sent ${expected.type} to ${expected.to} (seq ${expected.seq})`];
  if (!expected || !actual) return [];
  const lines: string[] = [];
  if (expected.type !== actual.type) lines.push(`type: ${expected.type} → ${actual.type}`);
  if (expected.to !== actual.to) lines.push(`to: ${expected.to} → ${actual.to}`);
  if (expected.from !== actual.from) lines.push(`from: ${expected.from} → ${actual.from}`);
  return [...lines, ...describeChange(expected.payload, actual.payload, 'payload')];
}
