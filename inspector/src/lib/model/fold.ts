import { heldTotal, noSpend, plusSettled } from '@ao/graphs/spend';
import type { Spent } from '@ao/graphs/spend';
import { fieldsOf } from '../api/types';
import type { Budget, Envelope, NodeStatus, RunStatus, WaitInfo } from '../api/types';

/** What the inspector shows of one graph node at some point of a run. */
export interface NodeView {
  status: NodeStatus;
  iteration: number;
  attempt: number;
  /** Swarm branches: started, finished and failed so far (of `of`). */
  branches: { of: number; running: number; done: number; failed: number };
  /** Tokens settled for this node. */
  tokens: number;
  error?: string;
  /** The node waits mid-run for a person: its agent asked (`interrupt`), or it reached a soft budget limit (`budget`). */
  asking?: 'interrupt' | 'budget';
}

/** Tokens, tool calls, dollars and calls per tool: the ledger's figures (`@ao/graphs/spend`). */
export type Amounts = Spent;

interface Reservation {
  node: string;
  tokens: number;
  usd: number;
  tool?: string;
}

/**
 * Where a run's log starts from when it does not start from nothing: a replay begins restored
 * from a checkpoint of the original (node states, budget ledger, wall-clock deadline), and its
 * log holds only what happened after.
 */
export interface FoldBase {
  nodes?: Record<string, { status: NodeStatus; iteration: number; attempt: number }>;
  used?: Amounts;
  byNode?: Record<string, { tokens: number }>;
  reserved?: Record<string, Reservation>;
  /** The wall-clock deadline (epoch ms) the run carries. */
  deadline?: number;
}

/** The base of a replay, read from its own copy of the checkpoint it starts from (`GET /runs/:id/checkpoints/:step`). */
export function baseFromCheckpoint(state: unknown): FoldBase {
  const s = (state ?? {}) as {
    sched?: { nodes?: FoldBase['nodes'] };
    ledger?: { used?: Amounts; byNode?: FoldBase['byNode']; reserved?: FoldBase['reserved'] };
    deadline?: number;
  };
  return {
    ...(s.sched?.nodes ? { nodes: s.sched.nodes } : {}),
    ...(s.ledger?.used ? { used: s.ledger.used } : {}),
    ...(s.ledger?.byNode ? { byNode: s.ledger.byNode } : {}),
    ...(s.ledger?.reserved ? { reserved: s.ledger.reserved } : {}),
    ...(typeof s.deadline === 'number' ? { deadline: s.deadline } : {}),
  };
}

/**
 * A run folded from its envelopes: run status, node states and the budget ledger (settled and
 * reserved), by the budget actor's ledger's rules and with its arithmetic (`@ao/graphs/spend`). Folded
 * from the log alone, so the inspector can show any point of a run: live (fold as envelopes
 * arrive) or stepping through (fold the first n).
 */
export class RunFold {
  status: RunStatus = 'pending';
  nodes: Record<string, NodeView> = {};
  used: Amounts = noSpend();
  private reservations = new Map<string, Reservation>();
  /** Calls waiting for calls in flight to settle (`budget.waiting`, until decided), by key: the gauge they wait on. */
  readonly waiting = new Map<string, string>();
  /** LLM calls waiting for their profile's shared limits (`llm.throttled`, until answered), by key: which limit. */
  readonly throttled = new Map<string, string>();
  /** How many LLM calls of the run waited for capacity so far. */
  throttledCalls = 0;
  startedAt: string | null = null;
  /** Waits open at this point (from `wait.opened` / `wait.registered`, until `wait.resolved`), by id. */
  waits: Record<string, WaitInfo> = {};
  /** Ids of the waits resolved so far. */
  readonly resolved = new Set<string>();
  /** Time of the last envelope applied. */
  at: string | null = null;
  /** Time spent asleep waiting for a person that the run's wall clock does not count (ms), from `run.resumed`. */
  pausedMs = 0;
  /** Asleep since (epoch ms) on waits that do not count the wall clock; null while not. */
  pausedSince: number | null = null;
  /** Soft limits as raised by a person (`budget.raised`); undefined: the run's own. */
  soft: Budget['soft'] | undefined;
  applied = 0;

  readonly deadline: number | undefined;

  constructor(nodeIds: readonly string[], base: FoldBase = {}) {
    for (const id of nodeIds) {
      const b = base.nodes?.[id];
      this.nodes[id] = {
        ...blankNode(),
        ...(b ? { status: b.status, iteration: b.iteration, attempt: b.attempt } : {}),
        tokens: base.byNode?.[id]?.tokens ?? 0,
      };
    }
    if (base.used) this.used = { ...base.used, perTool: { ...base.used.perTool } };
    for (const [k, r] of Object.entries(base.reserved ?? {}))
      this.reservations.set(k, { node: r.node, tokens: r.tokens, usd: r.usd, ...(r.tool ? { tool: r.tool } : {}) });
    this.deadline = base.deadline;
  }

  /** Reserved by calls in flight (granted, not settled or released). */
  get reserved(): Amounts {
    return heldTotal(this.reservations.values());
  }

  private node(id: string): NodeView {
    return (this.nodes[id] ??= blankNode());
  }

  private open(w: WaitInfo): void {
    if (this.resolved.has(w.id)) return;
    this.waits[w.id] = w;
    if (!w.node) return;
    // An approval holds the node before it starts; a question (or a soft budget limit) comes from a node that runs.
    if (w.kind === 'approval') this.node(w.node).status = 'waiting';
    else this.node(w.node).asking = w.kind;
  }

  apply(e: Envelope): void {
    this.applied += 1;
    this.at = e.time;
    const p = fieldsOf(e.payload);
    const id = typeof p.node === 'string' ? p.node : '';
    // One switch per family of envelopes; each ignores the others' types.
    this.applyRun(e, p, id);
    this.applyNode(e, p, id);
    this.applySpend(e, p);
  }

  /** The run's status, its waits and its paused wall clock. */
  private applyRun(e: Envelope, p: Record<string, unknown>, id: string): void {
    switch (e.type) {
      case 'run.started':
      case 'run.replayed':
        this.status = 'running';
        this.startedAt ??= e.time;
        break;
      case 'run.finished':
        this.status = p.status as RunStatus;
        break;
      case 'run.parked':
        this.status = 'waiting';
        break;
      case 'run.waiting':
        this.status = 'waiting';
        // The wall clock stops while a run sleeps for a person, unless one of its waits says it counts.
        if (!((p.waits as WaitInfo[] | undefined) ?? []).some((w) => w.countWallClock)) this.pausedSince ??= Date.parse(e.time);
        // All the waits open as the run went to sleep: some (a budget's soft limit) have no `wait.opened` of their own.
        for (const w of (p.waits as WaitInfo[] | undefined) ?? []) this.open(w);
        break;
      case 'run.resumed':
        this.status = 'running';
        if (p.wallClockPaused !== false && typeof p.pausedMs === 'number') this.pausedMs += p.pausedMs;
        else if (p.wallClockPaused !== false && this.pausedSince !== null) this.pausedMs += Date.parse(e.time) - this.pausedSince;
        this.pausedSince = null;
        break;
      case 'wait.opened':
      case 'wait.registered':
        this.open(p as unknown as WaitInfo);
        break;
      case 'wait.resolved': {
        const w = p.wait as string;
        this.resolved.add(w);
        delete this.waits[w];
        if (id && p.kind !== 'approval')
          this.node(id).asking = Object.values(this.waits).find((x) => x.node === id && x.kind !== 'approval')?.kind as NodeView['asking'];
        break;
      }
    }
  }

  /** The nodes' status, iterations and branches. */
  private applyNode(e: Envelope, p: Record<string, unknown>, id: string): void {
    switch (e.type) {
      case 'node.start': {
        const n = this.node(id);
        Object.assign(n, { status: 'running', iteration: p.iteration as number, attempt: p.attempt as number, error: undefined, asking: undefined });
        n.branches = { of: 0, running: 0, done: 0, failed: 0 };
        break;
      }
      case 'node.completed':
        Object.assign(this.node(id), { status: 'succeeded', asking: undefined });
        break;
      case 'node.failed': {
        const n = this.node(id);
        n.status = 'failed';
        n.asking = undefined;
        n.error = (p.error as { message?: string } | undefined)?.message;
        break;
      }
      case 'node.retry_scheduled':
        this.node(id).status = 'retrying';
        break;
      case 'node.skipped':
        this.node(id).status = 'skipped';
        break;
      case 'loop.iterated':
        for (const r of (p.reset as string[] | undefined) ?? []) {
          const n = this.node(r);
          n.status = 'pending';
        }
        break;
      case 'branch.start': {
        const b = this.node(id).branches;
        b.of = Math.max(b.of, p.of as number);
        b.running += 1;
        break;
      }
      case 'branch.completed':
      case 'branch.failed': {
        const b = this.node(id).branches;
        b.running = Math.max(0, b.running - 1);
        if (e.type === 'branch.completed') b.done += 1;
        else b.failed += 1;
        break;
      }
    }
  }

  /** Model calls held back by provider limits, and the budget's waits, reservations and spend. */
  private applySpend(e: Envelope, p: Record<string, unknown>): void {
    switch (e.type) {
      case 'llm.throttled':
        this.throttled.set(p.key as string, `${String(p.limit)} (${String(p.scope)})`);
        this.throttledCalls += 1;
        break;
      case 'llm.response':
      case 'llm.failed':
        this.throttled.delete(p.key as string);
        break;
      case 'budget.waiting':
        this.waiting.set(p.key as string, p.limit === 'perTool' ? `perTool.${String(p.tool)}` : String(p.limit));
        break;
      case 'budget.refused':
        this.waiting.delete(p.key as string);
        break;
      case 'budget.granted': {
        this.waiting.delete(p.key as string);
        const r = p.reservation as Reservation;
        this.reservations.set(p.key as string, { node: r.node, tokens: r.tokens, usd: r.usd, ...(r.tool ? { tool: r.tool } : {}) });
        break;
      }
      case 'budget.settle': {
        const r = this.reservations.get(p.key as string);
        if (!r) break; // settled already, or never granted: the ledger ignores it too
        this.reservations.delete(p.key as string);
        this.used = plusSettled(this.used, r, { tokens: p.tokens as number, usd: p.usd as number });
        this.node(r.node).tokens += p.tokens as number;
        break;
      }
      case 'budget.raised':
        this.soft = p.soft as Budget['soft'];
        break;
      case 'budget.release':
        this.reservations.delete(p.key as string);
        this.waiting.delete(p.key as string);
        break;
    }
  }
}

const blankNode = (): NodeView => ({ status: 'pending', iteration: 0, attempt: 0, branches: { of: 0, running: 0, done: 0, failed: 0 }, tokens: 0 });

/** The fold of the first `n` envelopes. */
export function foldUpTo(events: readonly Envelope[], n: number, nodeIds: readonly string[], base?: FoldBase): RunFold {
  const f = new RunFold(nodeIds, base);
  const end = Math.min(n, events.length);
  for (let i = 0; i < end; i++) f.apply(events[i]!);
  return f;
}

export interface Gauge {
  /** `tokens`, `tools`, `usd`, `wallClockSec` or `perTool.<tool>`. */
  name: string;
  label: string;
  limit: number;
  used: number;
  reserved: number;
  /** The soft limit (a person is asked before it is passed), if the budget has one. */
  soft?: number;
  /** Calls waiting for this limit's calls in flight to settle before they are decided. */
  waiting: number;
  unit: string;
}

/**
 * One gauge per limit of the run's budget, at the fold's point in time; the wall clock runs to
 * `nowMs` when given (a live run), else to the time of the last envelope folded.
 */
export function gauges(limits: Budget, f: RunFold, nowMs?: number): Gauge[] {
  const out: Omit<Gauge, 'waiting'>[] = [];
  const r = f.reserved;
  const soft = f.soft ?? limits.soft ?? {};
  const withSoft = (k: 'tokens' | 'tools' | 'usd') => (soft[k] !== undefined ? { soft: soft[k] } : {});
  // A limit may be soft only: its gauge reads against the soft limit.
  const cap = (k: 'tokens' | 'tools' | 'usd') => limits[k] ?? soft[k];
  if (cap('tokens') !== undefined)
    out.push({ name: 'tokens', label: 'tokens', limit: cap('tokens')!, used: f.used.tokens, reserved: r.tokens, unit: '', ...withSoft('tokens') });
  if (cap('tools') !== undefined)
    out.push({ name: 'tools', label: 'tool calls', limit: cap('tools')!, used: f.used.tools, reserved: r.tools, unit: '', ...withSoft('tools') });
  if (cap('usd') !== undefined) out.push({ name: 'usd', label: 'cost', limit: cap('usd')!, used: f.used.usd, reserved: r.usd, unit: '$', ...withSoft('usd') });
  if (limits.wallClockSec !== undefined) {
    const last = nowMs ?? (f.at ? Date.parse(f.at) : undefined);
    // Time asleep for a person does not count (unless a wait says so): the clock stops when the run sleeps.
    const to = last === undefined ? undefined : f.pausedSince !== null ? Math.min(last, f.pausedSince) : last;
    // A restored run (a replay) carries its deadline: what is used is what the deadline no longer leaves.
    const elapsed =
      to === undefined
        ? 0
        : f.deadline !== undefined
          ? limits.wallClockSec - (f.deadline + f.pausedMs - to) / 1000
          : f.startedAt
            ? (to - Date.parse(f.startedAt) - f.pausedMs) / 1000
            : 0;
    out.push({ name: 'wallClockSec', label: 'wall clock', limit: limits.wallClockSec, used: Math.max(0, elapsed), reserved: 0, unit: 's' });
  }
  for (const [tool, cap] of Object.entries(limits.perTool ?? {})) {
    out.push({ name: `perTool.${tool}`, label: `${tool} calls`, limit: cap, used: f.used.perTool[tool] ?? 0, reserved: r.perTool[tool] ?? 0, unit: '' });
  }
  const waiting = new Map<string, number>();
  for (const g of f.waiting.values()) waiting.set(g, (waiting.get(g) ?? 0) + 1);
  return out.map((g) => ({ ...g, waiting: waiting.get(g.name) ?? 0 }));
}
