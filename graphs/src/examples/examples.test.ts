import { describe, it, expect } from 'vitest';
import { GraphRegistry } from '../registry.js';
import type { GraphBuilder } from '../builder.js';
import type { RunContext } from '../types.js';
import { MAX_DRAFTS, draftCritique, exampleGraphs, researchSwarm, triage, triageWithApproval } from './mod.js';

const ctx = <I = unknown>(c: Partial<RunContext<I>>): RunContext<I> => ({ input: undefined as I, outputs: {}, iterations: {}, ...c });
const edgeList = (edges: ReadonlyArray<{ from: string; to: string; back: boolean; when?: unknown }>) =>
  edges.map((e) => ({ from: e.from, to: e.to, back: e.back, conditional: e.when !== undefined }));

describe('example graphs', () => {
  it('all build and register against a tool registry with web_search and stripe_refund', () => {
    const r = new GraphRegistry((t) => t === 'web_search' || t === 'stripe_refund');
    // GraphDef<I> is invariant in I, so a list of graphs with different inputs is widened by a cast.
    for (const b of exampleGraphs) r.register(b as GraphBuilder<unknown>);
    expect(r.list().map((d) => d.name)).toEqual(['draft-critique', 'research-swarm', 'triage', 'triage-with-approval']);
  });

  it('triage-with-approval is triage plus a person approving the refund before stripe_refund; triage itself asks nobody', () => {
    const plain = triage.build();
    const hitl = triageWithApproval.build();
    expect(plain.nodes.some((n) => n.approval || n.interrupt)).toBe(false);
    expect(hitl.nodes.map((n) => n.id)).toEqual(plain.nodes.map((n) => n.id));
    expect(hitl.node('refund')?.approval).toMatchObject({ prompt: 'Approve this refund?', onTimeout: 'reject', countWallClock: false });
    expect(hitl.nodes.filter((n) => n.approval).map((n) => n.id)).toEqual(['refund']);
    expect(hitl.budget).toEqual(plain.budget);
    expect(hitl.node('refund')?.approval?.schema?.safeParse({ approved: 'yes' }).success).toBe(false);
  });

  it('research-swarm is a plan -> search -> analyse -> summarise chain with a swarm of 3 and a web_search cap', () => {
    const def = researchSwarm.build();
    expect(def.name).toBe('research-swarm');
    expect(def.nodes.map((n) => [n.id, n.agent])).toEqual([
      ['plan', 'supervisor'],
      ['search', 'pipeline'],
      ['analyse', 'swarm'],
      ['summarise', 'pipeline'],
    ]);
    expect(def.node('search')?.tools).toEqual(['web_search']);
    expect(def.node('analyse')?.concurrency).toBe(3);
    expect(edgeList(def.edges)).toEqual([
      { from: 'plan', to: 'search', back: false, conditional: false },
      { from: 'search', to: 'analyse', back: false, conditional: false },
      { from: 'analyse', to: 'summarise', back: false, conditional: false },
    ]);
    expect(def.budget).toEqual({ tokens: 50000, tools: 100, wallClockSec: 300, perTool: { web_search: 20 } });
    expect(def.entries).toEqual(['plan']);
    expect(def.loops).toEqual([]);
    expect(def.inputSchema).toBeUndefined();
  });

  it('triage routes classify to refund or escalate by the input intent', () => {
    const def = triage.build();
    expect(def.nodes.map((n) => [n.id, n.agent])).toEqual([
      ['classify', 'supervisor'],
      ['refund', 'pipeline'],
      ['escalate', 'pipeline'],
    ]);
    expect(def.node('refund')?.tools).toEqual(['stripe_refund']);
    expect(edgeList(def.edges)).toEqual([
      { from: 'classify', to: 'refund', back: false, conditional: true },
      { from: 'classify', to: 'escalate', back: false, conditional: true },
    ]);
    const [toRefund, toEscalate] = def.edges;
    const refund = ctx({ input: { intent: 'refund' } });
    const other = ctx({ input: { intent: 'question' } });
    expect([toRefund!.when!(refund), toEscalate!.when!(refund)]).toEqual([true, false]);
    expect([toRefund!.when!(other), toEscalate!.when!(other)]).toEqual([false, true]);
    expect(toEscalate!.when!(ctx({ input: undefined }))).toBe(true);
    expect(def.budget).toEqual({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } });
    expect(def.entries).toEqual(['classify']);
    expect(def.loops).toEqual([]);
  });

  it('draft-critique has exactly one loop critique -> draft over [draft, critique], bounded by draft', () => {
    const def = draftCritique.build();
    expect(def.nodes.map((n) => [n.id, n.agent])).toEqual([
      ['outline', 'supervisor'],
      ['draft', 'pipeline'],
      ['critique', 'supervisor'],
      ['publish', 'pipeline'],
    ]);
    expect(MAX_DRAFTS).toBe(3);
    expect(def.node('draft')?.maxIterations).toBe(MAX_DRAFTS);
    expect(def.nodes.filter((n) => n.maxIterations !== undefined).map((n) => n.id)).toEqual(['draft']);
    expect(edgeList(def.edges)).toEqual([
      { from: 'outline', to: 'draft', back: false, conditional: false },
      { from: 'draft', to: 'critique', back: false, conditional: false },
      { from: 'critique', to: 'draft', back: true, conditional: true },
      { from: 'critique', to: 'publish', back: false, conditional: true },
    ]);
    expect(def.loops).toEqual([{ from: 'critique', to: 'draft', body: ['draft', 'critique'] }]);
    expect(def.entries).toEqual(['outline']);
    expect(def.budget).toEqual({ tokens: 20000, wallClockSec: 120 });
  });

  it('draft-critique loops until the critic approves or MAX_DRAFTS drafts were written', () => {
    const [, , again, publish] = draftCritique.build().edges;
    type In = { brief: string };
    const notYet = ctx<In>({ outputs: { critique: { text: 'Fix the intro.' } }, iterations: { draft: 1 } });
    const ok = ctx<In>({ outputs: { critique: { text: 'APPROVED, ship it' } }, iterations: { draft: 1 } });
    const spent = ctx<In>({ outputs: { critique: { text: 'Still weak.' } }, iterations: { draft: MAX_DRAFTS } });
    expect([again!.when!(notYet), publish!.when!(notYet)]).toEqual([true, false]);
    expect([again!.when!(ok), publish!.when!(ok)]).toEqual([false, true]);
    expect(publish!.when!(spent)).toBe(true);
  });

  it('draft-critique requires a non-empty brief as input', () => {
    const schema = draftCritique.build().inputSchema!;
    expect(schema.safeParse({ brief: 'a post about actors' }).success).toBe(true);
    expect(schema.safeParse({ brief: '' }).success).toBe(false);
    expect(schema.safeParse({}).success).toBe(false);
  });
});
