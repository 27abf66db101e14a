import { randomUUID } from 'node:crypto';
import { AoError, isAoError, parseBudget, zodIssuePath } from '@ao/graphs';
import type { Budget, BudgetAnswer } from '@ao/graphs';
import { log, TERMINAL_STATUSES } from '@ao/runtime';
import type { RunRecord, SignalRecord, WaitInfo } from '@ao/runtime';
import { answerSchema } from '../run-supervisor/run-supervisor.js';
import { release } from './context.js';
import type { EngineContext } from './context.js';
import { QUEUE_OWNER } from './options.js';
import type { Resumer } from './resume.js';

/** An answer to a wait of a run: POST /runs/:id/signal. */
export interface SignalRequest {
  /** The node whose wait it answers. */
  node: string;
  /** The wait (as listed in the run's `waits`); without it, the node's open wait, or its next one. */
  waitId?: string;
  payload: unknown;
}

export interface SignalResult {
  run: RunRecord;
  signal: SignalRecord;
  /** The wait it answers (null: it came before the node's wait, and the next one takes it). */
  wait: WaitInfo | null;
  /** A repeat of an answer already given (nothing changed). */
  duplicate: boolean;
}

/** Signals a waiting run could take now (their wait is open; an early answer is never a budget decision). */
const answerable = (waits: readonly WaitInfo[], signals: readonly SignalRecord[]): boolean =>
  signals.some((sig) => waits.some((w) => (sig.waitId !== null ? w.id === sig.waitId : w.node === sig.node && w.kind !== 'budget')));

/**
 * A budget decision that cannot work is refused at the door (400), not found out by the run: a
 * fork's budget must be valid over the run's, and a grant may not name amounts for limits the run
 * has no soft limit of.
 */
function checkBudgetAnswer(run: RunRecord, a: BudgetAnswer): void {
  if (a.decision === 'fork') {
    try {
      parseBudget({ ...(run.budget as Budget), ...a.budget }, 'payload.budget');
    } catch (e) {
      const field = isAoError(e) && e.field ? e.field : 'payload.budget';
      throw new AoError('AO_VALIDATION', (e as Error).message, { field });
    }
  }
  if (a.decision === 'grant') {
    const soft = (run.budget as Budget).soft ?? {};
    for (const k of ['tokens', 'tools', 'usd'] as const) {
      if (a[k] !== undefined && soft[k] === undefined)
        throw new AoError('AO_VALIDATION', `payload.${k}: the run has no soft ${k} limit to raise`, { field: `payload.${k}` });
    }
  }
}

/**
 * Whether an answer that opens no wait now may be kept for one still to come: only if the node can
 * still ask (an approval not yet reached, a question from a node that has not finished).
 */
function mayAskLater(run: RunRecord, req: SignalRequest, kind: WaitInfo['kind'] | undefined): boolean {
  const status = run.nodes[req.node]?.status ?? 'pending';
  if (req.waitId !== undefined) return false;
  if (kind === 'approval') return status === 'pending' || status === 'waiting';
  if (kind === 'interrupt') return status === 'pending' || status === 'running' || status === 'retrying' || status === 'waiting';
  return false;
}

/** Answers to a run's waits (approvals, questions, budget decisions) and the waking of a run that sleeps on one. */
export class Waits {
  constructor(
    private readonly ctx: EngineContext,
    private readonly resumer: Resumer,
  ) {}

  /**
   * Answer a wait of a run (an approval, an agent's question). The answer is validated against the
   * wait's schema and stored before anything else, so it is never lost: a run that sleeps is woken
   * (here, or through the cluster's queue), a run hosted here takes it at once, a run hosted on
   * another node takes it when that node renews its lease. An answer for a node whose wait is not
   * open yet is kept for it. A second answer to the same wait is a no-op (`duplicate`).
   */
  async signal(id: string, req: SignalRequest): Promise<SignalResult> {
    const store = this.ctx.store;
    const run = await store.getRun(id);
    if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
    if (TERMINAL_STATUSES.has(run.status))
      throw new AoError('AO_RUN_NOT_WAITING', `run ${id} has ended (${run.status}); it waits for nothing`, { field: 'id' });
    const def = this.ctx.graphs.get(run.graph);
    const node = def?.node(req.node);
    if (!def || !node) throw new AoError('AO_VALIDATION', `graph "${run.graph}" has no node "${req.node}"`, { field: 'node' });
    const waitingFor = () => (run.waits.length ? `it waits for: ${run.waits.map((w) => `${w.node} (${w.kind} ${w.id})`).join(', ')}` : 'it waits for nothing');
    const wait = run.waits.find((w) => w.node === req.node && (req.waitId === undefined || w.id === req.waitId)) ?? null;
    if (!wait && req.waitId !== undefined) {
      // Answered before (a double click after the first answer was taken): the first one stands.
      const prior = await store.getSignal(id, req.waitId);
      if (prior && prior.node === req.node) return { run, signal: prior, wait: null, duplicate: true };
    }
    const kind: WaitInfo['kind'] | undefined = wait?.kind ?? (node.approval ? 'approval' : node.interrupt ? 'interrupt' : undefined);
    if (!wait && (!mayAskLater(run, req, kind) || run.status === 'waiting')) {
      throw new AoError(
        'AO_RUN_NOT_WAITING',
        `run ${id} is not waiting for an answer from node "${req.node}"${req.waitId !== undefined ? ` (wait ${req.waitId})` : ''}; ${waitingFor()}`,
        { field: 'node' },
      );
    }
    const parsed = answerSchema(def, req.node, kind!).safeParse(req.payload);
    if (!parsed.success) {
      const field = zodIssuePath(parsed.error.issues[0], 'payload') ?? 'payload';
      throw new AoError('AO_VALIDATION', `${field}: ${parsed.error.issues[0]?.message}`, { field });
    }
    if (wait?.kind === 'budget') checkBudgetAnswer(run, parsed.data as BudgetAnswer);
    const { signal, duplicate } = await store.addSignal({ id: randomUUID(), runId: id, node: req.node, waitId: wait?.id ?? null, payload: parsed.data });
    // An answer to an open wait wakes the run; an early one (or a repeat) may have become
    // answerable while it was stored (the run opened the wait and fell asleep meanwhile).
    if (!duplicate && wait) await this.wake(id);
    else await this.wakeIfAnswerable(id);
    return { run: (await store.getRun(id)) ?? run, signal, wait, duplicate };
  }

  /** Wake a sleeping run that has an answer it can take now. */
  async wakeIfAnswerable(id: string): Promise<void> {
    const [run, pending] = await Promise.all([this.ctx.store.getRun(id), this.ctx.store.pendingSignals(id)]);
    if (run && run.status === 'waiting' && answerable(run.waits, pending)) await this.wake(id);
  }

  /** A run went to sleep: an answer that came while it was going is taken now (otherwise nobody would wake it). */
  async afterPassivation(id: string): Promise<void> {
    try {
      await this.wakeIfAnswerable(id);
    } catch (e) {
      log.error('could not check the run for answers after it went to sleep', { component: 'engine', nodeId: this.ctx.nodeId, runId: id, err: e });
    }
  }

  /**
   * An answer came for a run: its host here takes it now; a sleeping run is woken (one waker wins)
   * and resumed here or, in a cluster, by whichever node takes it from the queue. A run hosted on
   * another node takes the answer when that node renews its lease.
   */
  private async wake(id: string): Promise<void> {
    const { ctx } = this;
    const host = ctx.hosts.get(id);
    if (host && !host.stopped) return host.signals();
    const queue = ctx.bus.queue;
    const run = await ctx.store.wakeRun({ id, owner: queue ? QUEUE_OWNER : ctx.nodeId, leaseMs: ctx.leaseMs });
    if (!run) return;
    if (queue) return void (await queue.enqueue('runs', id, { runId: id }));
    // Even a passive engine (the CLI's embedded one) hosts the run its own answer woke.
    if (ctx.closed) return void (await release(ctx, [id]));
    // Resumed beside the answer (the caller is told it is stored): a failure gives the run back to the claim loop.
    this.resumer
      .resume(run)
      .catch((e: unknown) => log.error('could not resume the run after an answer', { component: 'engine', nodeId: ctx.nodeId, runId: id, err: e }));
  }
}
