import { AoError, isAoError, toGraphDef } from '@ao/graphs';
import type { GraphBuilder, GraphDef } from '@ao/graphs';
import { InProcessBus, NewRunIdSchema, runRecordOf, TERMINAL_STATUSES } from '@ao/runtime';
import type { CheckpointSummary, Divergence, Envelope, LlmPort, RunFile, RunRecord, Store, ToolRegistry } from '@ao/runtime';
import { Engine } from '../engine/index.js';
import { renamedFile, renamedIds } from './rename.js';
import { ScratchStore } from './scratch-store.js';

/**
 * Verifying recordings: a finished run is replayed from its start in recorded mode against the
 * graphs and tools of the code loaded now, in this process, on a scratch store in memory
 * (./scratch-store.ts). Every
 * decision is checked against the original's (see the replay's determinism check); no model or
 * tool is called and nothing is written where the run came from. This is what `ao verify` runs
 * over a store before a deploy.
 */

/**
 * Where one of the run's steps ended in its log (its checkpoint's step, seq and node; a store's
 * `listCheckpoints`, or a run file's checkpoints). With them, answers the run took without
 * sleeping (early, or while hosted) are served at the steps it took them; without, such a run
 * cannot be reproduced (see ../run-supervisor/recorded-waits.ts).
 */
export type StepEnd = Pick<CheckpointSummary, 'step' | 'seq' | 'node'>;

/** What verifying one run found. */
export interface Verdict {
  run: string;
  graph: string;
  /** The original's status. */
  status: string;
  /** `identical`: every decision reproduced; `diverged`: the first difference is in `divergence`; `error`: it could not be verified. */
  outcome: 'identical' | 'diverged' | 'error';
  /** The graph version the run recorded, and the one registered now (equal unless the graph changed). */
  version: { recorded: string; current: string | null; compatible?: boolean };
  divergence?: Divergence;
  error?: { code: string; message: string };
  /** Envelopes of the original that were checked. */
  events: number;
  ms: number;
}

export interface VerifierOptions {
  graphs: ReadonlyArray<GraphBuilder<unknown> | GraphDef<unknown>>;
  tools: ToolRegistry;
  /**
   * The models by profile, for what a replay asks them without calling them (a prompt's token
   * count for the budget's reservation). Their `complete` is never called: a verification that
   * would call a model fails instead. Default: no counting (the runtime's estimate).
   */
  llm?: (profile: string) => LlmPort;
  /** How long one run's replay may take (default 30 s). */
  timeoutMs?: number;
}

/** A model port that counts as `inner` does but refuses to be called. */
function refusing(inner: LlmPort | undefined): LlmPort {
  return {
    provider: inner?.provider ?? 'offline',
    ...(inner?.maxOutputTokens !== undefined ? { maxOutputTokens: inner.maxOutputTokens } : {}),
    ...(inner?.countPromptTokens ? { countPromptTokens: (req) => inner.countPromptTokens!(req) } : {}),
    complete: () => Promise.reject(new AoError('AO_INTERNAL', 'verifying a recording calls no model: the replay asked for a call the original did not make')),
  };
}

/**
 * Replays recorded runs against the code loaded now, one scratch store and engine for many runs.
 *
 * @example
 * ```ts
 * const verifier = new Verifier({ graphs: exampleGraphs, tools });
 * const verdict = await verifier.verify(run, await store.listEvents(run.id, { limit: 1_000_000 }));
 * if (verdict.outcome === 'diverged') console.log(verdict.divergence!.diff.join('\n'));
 * await verifier.close();
 * ```
 */
export class Verifier {
  private scratch: Promise<{ store: ScratchStore; engine: Engine }> | undefined;
  private readonly graphs: Map<string, GraphDef<unknown>>;

  constructor(private readonly o: VerifierOptions) {
    this.graphs = new Map(o.graphs.map((g) => toGraphDef(g)).map((d) => [d.name, d]));
  }

  /** The scratch store and a passive engine on it (it claims nothing: only the replays it starts run). */
  private open(): Promise<{ store: ScratchStore; engine: Engine }> {
    const llm = this.o.llm;
    const store = new ScratchStore();
    return (this.scratch ??= Engine.create({
      store,
      bus: new InProcessBus(),
      llm: (profile) => refusing(llm?.(profile)),
      tools: this.o.tools,
      graphs: [...this.graphs.values()],
      passive: true,
      sweepIntervalMs: 0,
    }).then((engine) => ({ store, engine })));
  }

  /**
   * Verify one finished run, given its row, its whole log and where its steps ended (from a store,
   * or a file): they are copied to the scratch store, and it is replayed there from step 0 in
   * recorded mode. A run whose
   * graph is not registered now, or that did not finish, is an `error` verdict; a graph whose
   * version changed is replayed all the same (a replay from the start uses no checkpoint, so no
   * migration is needed) and says so.
   */
  async verify(run: RunRecord, events: readonly Envelope[], steps: readonly StepEnd[] = []): Promise<Verdict> {
    const def = this.graphs.get(run.graph);
    const version: Verdict['version'] = {
      recorded: run.graphVersion,
      current: def?.version ?? null,
      ...(def && def.version !== run.graphVersion ? { compatible: run.graphVersion in def.migrations } : {}),
    };
    const base = { run: run.id, graph: run.graph, status: run.status, version };
    const fail = (code: string, message: string): Verdict => ({ ...base, outcome: 'error', error: { code, message }, events: 0, ms: 0 });
    if (!def) return fail('AO_GRAPH_NOT_FOUND', `graph "${run.graph}" is not registered in this checkout`);
    if (!TERMINAL_STATUSES.has(run.status)) return fail('AO_VALIDATION', `run is ${run.status}: only finished runs are verified`);
    if (run.replay) return fail('AO_VALIDATION', 'run is a replay: verify its original');
    const { store, engine } = await this.open();
    const t0 = performance.now();
    const ids = [run.id];
    try {
      await copyRun(store, run, events, steps);
      const started = await engine.replay(run.id, { fromStep: 0, mode: 'recorded' });
      ids.push(started.id);
      const replay = await engine.waitForRun(started.id, this.o.timeoutMs ?? 30_000);
      const ms = performance.now() - t0;
      const divergence = replay.replay?.divergence ?? undefined;
      if (divergence) return { ...base, outcome: 'diverged', divergence, events: events.length, ms };
      if (replay.status !== run.status) {
        // Every decision matched, yet it ended otherwise (it stopped short of the original's end).
        return {
          ...base,
          outcome: 'error',
          error: {
            code: replay.error?.code ?? 'AO_INTERNAL',
            message: `the replay ended ${replay.status}${replay.error ? ` (${replay.error.message})` : ''}; the original ${run.status}`,
          },
          events: events.length,
          ms,
        };
      }
      return { ...base, outcome: 'identical', events: events.length, ms };
    } catch (e) {
      return {
        ...base,
        outcome: 'error',
        error: { code: isAoError(e) ? e.code : 'AO_INTERNAL', message: (e as Error).message },
        events: events.length,
        ms: performance.now() - t0,
      };
    } finally {
      // Verified (or given up on: a replay still hosted is cancelled first): memory stays flat.
      if (ids[1] && engine.activeRuns().includes(ids[1])) await engine.cancel(ids[1]).catch(() => undefined);
      store.forget(ids);
    }
  }

  /**
   * The run of `file` under `newId`, still replayable in recorded mode (see ./rename.ts): a recorded
   * replay of it from step 0 under the new id makes every envelope id again; every old id in the
   * file is rewritten to its new one. The run must reproduce against the graphs given (as `verify`
   * finds it identical): a run that does not cannot have its ids made again.
   * @throws AoError AO_VALIDATION (a bad id, a run that is a replay or not finished),
   *   AO_GRAPH_NOT_FOUND, AO_REPLAY_DIVERGED (the run does not reproduce against this checkout)
   */
  async rename(file: RunFile, newId: string): Promise<RunFile> {
    const parsed = NewRunIdSchema.safeParse(newId);
    if (!parsed.success) throw new AoError('AO_VALIDATION', `as: ${parsed.error.issues[0]?.message}`, { field: 'as' });
    const run = runRecordOf(file);
    if (newId === run.id) throw new AoError('AO_VALIDATION', `as: run ${run.id} already has this id`, { field: 'as' });
    if (run.replay) throw new AoError('AO_VALIDATION', `run ${run.id} is a replay: rename its original`, { field: 'as' });
    if (!this.graphs.get(run.graph)) throw new AoError('AO_GRAPH_NOT_FOUND', `graph "${run.graph}" is not registered in this checkout`, { field: 'graph' });
    const { store, engine } = await this.open();
    const ids = [run.id];
    try {
      await copyRun(store, run, file.events, file.checkpoints);
      const started = await engine.replay(run.id, { fromStep: 0, mode: 'recorded', id: newId });
      ids.push(started.id);
      const replay = await engine.waitForRun(started.id, this.o.timeoutMs ?? 30_000);
      const d = replay.replay?.divergence;
      if (d)
        throw new AoError(
          'AO_REPLAY_DIVERGED',
          `cannot rename run ${run.id}: it does not reproduce against this checkout (step ${d.step}, ${d.actor}: ${d.diff[0] ?? ''})`,
          { field: 'as', details: d },
        );
      if (replay.status !== run.status)
        throw new AoError('AO_REPLAY_DIVERGED', `cannot rename run ${run.id}: its replay ended ${replay.status}, the run ${run.status}`, { field: 'as' });
      const log = await store.listEvents(started.id, { limit: 10_000_000 });
      return renamedFile(file, newId, renamedIds(file.events, log, newId));
    } finally {
      if (ids[1] && engine.activeRuns().includes(ids[1])) await engine.cancel(ids[1]).catch(() => undefined);
      store.forget(ids);
    }
  }

  async close(): Promise<void> {
    const s = await this.scratch?.catch(() => undefined);
    this.scratch = undefined;
    if (!s) return;
    await s.engine.shutdown();
    await s.store.close();
  }
}

/**
 * The original's row and log in the scratch store, as they are: finished, held by no one, so the
 * scratch engine never resumes it. Of its checkpoints only where each step ended is kept (the
 * replay starts at step 0 and restores none).
 */
async function copyRun(store: Store, run: RunRecord, events: readonly Envelope[], steps: readonly StepEnd[]): Promise<void> {
  if (await store.getRun(run.id)) return;
  const checkpoints = steps.map((c) => ({ step: c.step, seq: c.seq, node: c.node, graphVersion: run.graphVersion, state: null, createdAt: run.createdAt }));
  await store.importRun({ run, events: [...events], checkpoints });
}
