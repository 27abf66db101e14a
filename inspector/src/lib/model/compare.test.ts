import { describe, expect, it } from 'vitest';
import type { Envelope } from '../api/types';
import { compareRows } from './compare';
import type { RunDiff } from './compare';
import { blocks, spans } from './markdown';

let seq = 0;
const env = (type: string, payload: unknown, from: string, to: string): Envelope => ({
  id: `id-${++seq}`,
  runId: 'r',
  seq,
  from,
  to,
  type,
  payload,
  causationId: null,
  trace: null,
  time: '2026-01-01T00:00:00.000Z',
});
const node = (id: string, actor: string, output: unknown, iteration = 1) => [
  env('node.start', { node: id, iteration, attempt: 1 }, 'supervisor', actor),
  env('node.completed', { node: id, iteration, attempt: 1, output }, actor, 'supervisor'),
];
const diff = (first: string | null): RunDiff => ({
  a: 'a',
  b: 'b',
  identical: first === null,
  events: { a: 0, b: 0 },
  first: first ? { actor: first, index: 3, a: null, b: null, diff: [] } : null,
  nodes: [],
});

describe('compareRows', () => {
  it('aligns two runs by actor, flags the first divergence and marks the executions whose outputs differ', () => {
    const a = [
      ...node('outline', 'supervisor/outline', { text: 'o' }),
      ...node('draft', 'supervisor/draft', { text: 'd1' }),
      ...node('draft', 'supervisor/draft@2.1', { text: 'd2' }, 2),
    ];
    const b = [
      ...node('outline', 'supervisor/outline', { text: 'o' }),
      ...node('draft', 'supervisor/draft', { text: 'list' }),
      ...node('publish', 'supervisor/publish', { text: 'p' }),
    ];
    const rows = compareRows(a, b, diff('supervisor/draft'));
    expect(rows.map((r) => [r.actor, r.first, r.differs, !!r.a, !!r.b])).toEqual([
      ['supervisor/outline', false, false, true, true],
      ['supervisor/draft', true, true, true, true],
      ['supervisor/draft@2.1', false, true, true, false],
      ['supervisor/publish', false, true, false, true],
    ]);
  });

  it("puts a divergence of a branch's call on its branch, and outputs equal as data compare equal", () => {
    const a = [...node('x', 'supervisor/x', { p: 1, q: 2 })];
    const b = [...node('x', 'supervisor/x', { q: 2, p: 1 })];
    expect(compareRows(a, b, diff('supervisor/x/llm-call'))).toMatchObject([{ actor: 'supervisor/x', first: true, differs: false }]);
  });
});

describe('markdown-ish text', () => {
  it('reads headings, paragraphs, lists and code fences', () => {
    expect(blocks('# Title\nSome *text*\nmore\n\n- a\n- b\n1. one\n```\ncode\n```')).toEqual([
      { kind: 'h', level: 1, text: 'Title' },
      { kind: 'p', text: 'Some *text*\nmore' },
      { kind: 'ul', items: ['a', 'b'] },
      { kind: 'ol', items: ['one'] },
      { kind: 'code', text: 'code' },
    ]);
    expect(spans('a `b` **c** <d>')).toEqual([
      { kind: 'text', text: 'a ' },
      { kind: 'code', text: 'b' },
      { kind: 'text', text: ' ' },
      { kind: 'bold', text: 'c' },
      { kind: 'text', text: ' <d>' },
    ]);
  });
});
