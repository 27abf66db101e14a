import { InterruptAnswerSchema, schemaJson } from '@ao/graphs';
import { actorPath, addUsage, emptyUsage, requirePayload, typed } from '@ao/runtime';
import type {
  ActorPath,
  AgentRestore,
  Attributes,
  EnvelopeType,
  LlmRequest,
  LlmResponse,
  Span,
  TraceContext,
  TurnExtras,
  Usage,
  UsedTool,
  WaitInfo,
} from '@ao/runtime';
import { replayAttr } from '../telemetry.js';
import { recordedQuestionTimes } from '../run-supervisor/recorded-waits.js';
import type { Payload } from '../messages.js';
import { draft } from '../services.js';
import type { RunServices } from '../services.js';
import { LLM_STEP, TOOL_STEP } from './interceptors.js';
import { llmStep, responseOf } from './llm.js';
import { runStep } from './step.js';
import type { Emission, StepActor, StepSpec } from './step.js';
import { outcomeOf, toolStep } from './tool.js';
import type { ToolOutcome } from './tool.js';

export { BUDGET_PATH, BUDGET_TIMEOUT_MS } from './interceptors.js';
export { errorInfo } from './step.js';
export type { ToolOutcome } from './tool.js';

/**
 * The one path for side effects of an actor: every LLM and tool call is a named, journaled step
 * with a key `actorPath/n` (n counts this actor's effects; the same in a replay of the run) and
 * an idempotency key `runId/actorPath/n` given to tools, recorded as a request envelope before it
 * runs and a result envelope after.
 *
 * After a crash the actor runs again from its start message, and the same calls come in the same
 * order with the same keys: a call whose result is in the log is not made again, its recorded
 * result is returned. A call that was in flight (request recorded, no result) is made again with
 * the same key when that is safe (LLM calls; `pure`, `read` and `idempotent` tools). An `unsafe`
 * tool is asked for its `status`, or the call fails with AO_EFFECT_UNKNOWN_OUTCOME: never blindly
 * repeated.
 *
 * Each call is one step (./step.ts) described by its spec (./llm.ts, ./tool.ts) and wrapped by
 * the interceptors of its kind (./interceptors.ts: recording and replay, budget, secrets, tracing).
 */
export class Effects {
  private n = 0;
  usage: Usage = emptyUsage();

  /** The trace context its envelopes carry: the node's span (or the run's, without one). */
  private readonly trace: TraceContext;
  /** This actor as the steps of its effects see it. */
  private readonly actor: StepActor;

  constructor(
    private readonly s: RunServices,
    private readonly path: ActorPath,
    private readonly causationId: string,
    private readonly node: string,
    /** The node's span: LLM and tool call spans are its children. */
    private readonly span?: { span: Span; trace: TraceContext },
  ) {
    this.trace = span?.trace ?? s.trace;
    this.actor = {
      s,
      path,
      node,
      span: span?.span,
      nextKey: () => this.key(),
      emit: (items, stage, turn) => this.emitAll(items, stage, turn),
      attrs: (extra) => this.attrs(extra),
      spent: (u) => {
        this.usage = addUsage(this.usage, u);
      },
    };
  }

  private attrs(extra: Attributes = {}): Attributes {
    return { 'ao.graph': String(this.s.spanAttributes['ao.graph']), 'ao.node': this.node, ...replayAttr(this.s), ...extra };
  }

  private key(): string {
    this.n += 1;
    return `${this.path}/${this.n}`;
  }

  private emit<T extends EnvelopeType>(from: ActorPath, to: ActorPath, type: T, payload: Payload<T>, key: string, stage = false) {
    return this.emitAll([{ from, to, key, ...typed(type, payload) }], stage);
  }

  /**
   * Several envelopes in one journal append: one commit, or (`stage`) none of its own: they ride
   * in the run's next commit. Durability points are an effect's intent (its request, with the
   * budget's grant staged before it) and what cannot be re-derived after a crash; a result the
   * effect's class lets us make again (an LLM answer, a pure, read or idempotent tool's result)
   * and its settlement are staged.
   */
  private emitAll(items: Emission[], stage = false, turn?: TurnExtras) {
    return this.s.journal.append(
      items.map((i) => draft({ runId: this.s.runId, trace: this.trace }, { ...i, causationId: this.causationId })),
      { ...(stage ? { stage } : {}), ...(turn ? { turn } : {}) },
    );
  }

  /**
   * Ask a person and wait for the answer (the node's `interrupt`). The question is an effect like
   * any other: registered with the run supervisor under this actor's next effect key (the wait's
   * stable id), and answered by a `wait.resolved` envelope. While nobody answers, the run is
   * passivated; when the answer comes this actor runs again from its start message, reads every
   * earlier effect back from the log and finds the answer there: nothing before the question is
   * done twice.
   */
  async interrupt(q: { prompt: string; payload?: unknown }, signal: AbortSignal): Promise<Payload<'wait.resolved'>> {
    signal.throwIfAborted();
    const key = this.key();
    const answered = this.s.journal.recorded(`${key}/resolved`);
    if (answered) return requirePayload(answered, 'wait.resolved');
    const opts = this.s.def.node(this.node)?.interrupt;
    const since = new Date(this.s.clock.now());
    // A recorded replay registers it at the times its original did.
    const times = recordedQuestionTimes(this.s.journal, key);
    const wait: WaitInfo = {
      id: key,
      node: this.node,
      kind: 'interrupt',
      prompt: q.prompt,
      ...(q.payload !== undefined ? { payload: q.payload } : {}),
      schema: schemaJson(opts?.schema ?? InterruptAnswerSchema),
      since: since.toISOString(),
      ...(opts?.timeoutSec !== undefined ? { timeoutAt: since.getTime() + opts.timeoutSec * 1000 } : {}),
      countWallClock: opts?.countWallClock ?? false,
      actor: this.path,
      ...times,
    };
    // No timeout of its own: the wait's timeout (if any) is an answer too.
    const reply = this.s.awaitReply(this.s.journal.idOf(`${key}/wait`), Infinity, signal);
    reply.catch(() => undefined);
    await this.emit(this.path, actorPath('supervisor'), 'wait.registered', wait, `${key}/wait`);
    return requirePayload(await reply, 'wait.resolved');
  }

  /**
   * One LLM call, as a journaled step (./llm.ts): a `chat` span under the node's span. `turn`: an
   * agent loop's turn (see @ao/runtime `turns.ts`): the tool calls it made since its previous
   * call, stored once in the request's turn record, and (`resume`) a resume point there: this
   * actor's state now, from which a restart goes on instead of running every turn again.
   */
  async llm(asked: LlmRequest, signal: AbortSignal, turn?: { used: UsedTool[]; resume?: number }): Promise<LlmResponse> {
    return responseOf(await this.step(llmStep(this.actor, asked, turn && this.turnExtras(turn)), signal));
  }

  /**
   * The turn record extras of a call about to be made (taken before anything of it is journaled:
   * the state's `seq` is the log's last before the call). Only where the journal gives seqs and
   * the budget ledger is at hand (the run's host; a node task runs every turn again).
   */
  private turnExtras(turn: { used: UsedTool[]; resume?: number }): TurnExtras | undefined {
    const seq = this.s.journal.lastSeq;
    if (seq === undefined) return undefined;
    if (turn.resume === undefined) return { used: turn.used };
    const { used, byNode, reserved, soft, usage } = this.s.ledgerAt([]);
    const ledger = { used, byNode, reserved, ...(soft ? { soft } : {}), usage };
    return { used: turn.used, state: { start: this.causationId, turn: turn.resume, n: this.n, usage: this.usage, seq, ledger } };
  }

  /**
   * This actor's state at its latest resume point, if the run was restored with one for this
   * execution (taken once): its effect count and usage are set from it; the caller gets its
   * conversation, tool calls and the turn to go on with.
   */
  restore(): AgentRestore | undefined {
    const r = this.s.restoredAgent?.(this.path, this.causationId);
    if (!r) return undefined;
    this.n = r.state.n;
    this.usage = r.state.usage;
    return r;
  }

  /**
   * Call a tool, as a journaled step (./tool.ts): an `execute_tool` span under the node's span; a
   * bad argument or a failing handler is an outcome, not a throw (the model sees it). Only the
   * tools the node lists may be called (AO_TOOL_NOT_ALLOWED otherwise, whoever asks). Arguments
   * marked secret are redacted in the log and the span; secret parts of the result are sealed and
   * replaced by handles.
   */
  async tool(node: string, name: string, args: unknown, signal: AbortSignal): Promise<ToolOutcome> {
    const allowed = this.s.def.node(this.node)?.tools ?? [];
    if (!allowed.includes(name)) {
      // Decided from the graph alone, so a re-run decides the same: nothing to journal.
      return {
        ok: false,
        error: { code: 'AO_TOOL_NOT_ALLOWED', message: `node "${this.node}" may not call tool "${name}"; it may call: ${allowed.join(', ') || 'none'}` },
      };
    }
    return outcomeOf(await this.step(toolStep(this.actor, node, name, args), signal));
  }

  /** One effect, as a journaled step through the interceptors of its kind (./step.ts). */
  step<I, W, P>(spec: StepSpec<I, W, P>, signal: AbortSignal): Promise<P> {
    return runStep(spec.kind === 'llm' ? LLM_STEP : TOOL_STEP, this.actor, spec, signal);
  }
}
