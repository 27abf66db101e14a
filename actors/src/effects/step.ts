import { AoError, isAoError } from '@ao/graphs';
import { requirePayload } from '@ao/runtime';
import type { ErrorCode } from '@ao/graphs';
import type { ActorPath, Attributes, ErrorInfo, SpanKind, Span, ToolSecrets, TurnExtras, Typed, Usage } from '@ao/runtime';
import type { BudgetRequest } from '../budget/ledger.js';
import type { Payload } from '../messages.js';
import type { RunServices } from '../services.js';

/**
 * One journaled step: the shape every side effect of an actor takes (an LLM call, a tool call).
 * The step journals the effect's intent (its request, a durability point), then serves its outcome
 * from the run's own log (a re-run after a crash), from a recorded replay's original, or from a
 * call made now, and journals the outcome with what closes it. Everything else an effect goes
 * through (the replay guard, the budget, secrets, tracing) is an interceptor around this core
 * (./interceptors.ts), so the sequence that makes crash recovery and replay exact is written once.
 */

/** Where an effect's outcome came from: the run's own log, a recorded replay's original, or a call made now. */
export type Source = 'log' | 'recording' | 'live';

/** One envelope of a journal append made for an effect. */
export type Emission = { from: ActorPath; to: ActorPath; key: string } & Typed;

/** The actor an effect belongs to, as its step and interceptors see it. */
export interface StepActor {
  readonly s: RunServices;
  readonly path: ActorPath;
  readonly node: string;
  /** The node's span: an effect's span is its child. */
  readonly span: Span | undefined;
  /** The actor's next effect key, `actorPath/n` (n counts this actor's effects). */
  nextKey(): string;
  /** One journal append: one commit, or (`stage`) none of its own: it rides in the run's next commit. `turn`: its model request's turn record extras. */
  emit(items: Emission[], stage: boolean, turn?: TurnExtras): Promise<unknown>;
  /** The attributes of the actor's metrics. */
  attrs(extra?: Attributes): Attributes;
  /** Count what an effect used in the actor's usage. */
  spent(u: Partial<Usage>): void;
}

/**
 * What an effect is, for its step: where it goes, what it journals under which keys, what the
 * budget is asked, and how it is made live. `I` is what the live call is given, `W` what it
 * answers, `P` the payload of its result envelope (what the step returns).
 */
export interface StepSpec<I, W, P> {
  kind: 'llm' | 'tool';
  /** The tool's name, or the model asked. */
  name: string;
  /** The actor that stands for the outside world: `llm/<profile>`, `tool/<name>`. */
  endpoint: ActorPath;
  /** The intent, journaled before anything is served: `<key>/<suffix>`. */
  request: {
    type: 'llm.request' | 'tool.call';
    suffix: 'req' | 'call';
    /** What a divergence report compares with the original's request, field by field (as the log shows it). */
    content: Record<string, unknown>;
    /** The hash of the request's true content: a recorded replay compares it with the original's. */
    hash: string;
    /** What an agent loop adds to the turn record of its model request (see @ao/runtime `turns.ts`). */
    turn?: TurnExtras;
  };
  /** What the budget is asked before the call (an LLM call may ask its provider to count the prompt). */
  budget(key: string): BudgetRequest | Promise<BudgetRequest>;
  /** The request's payload and the live call's input, once the budget granted the call (an LLM call's output is capped at the grant). */
  granted(key: string, grant: Payload<'budget.granted'> | undefined): { intent: Typed<'llm.request' | 'tool.call'>; input: I };
  /** The outcome, journaled as `<key>/<suffix>` with the type and payload `envelope` makes of it. */
  result: { suffix: 'res' | 'result'; envelope(p: P): Typed<'llm.response' | 'tool.result'> };
  /**
   * A call that fails: journaled as a failure envelope of its own and thrown (an LLM call:
   * `llm.failed`), or an outcome like any result that the caller sees (a tool: the model reads the
   * error). `code` names an error that does not name itself.
   */
  failure: { code: ErrorCode } & ({ type: 'llm.failed'; suffix: 'fail' } | { outcome(error: ErrorInfo, key: string): P });
  /**
   * How the outcome is journaled, by where it came from: with its result envelope or (an LLM
   * answer read back from the log) its settlement alone, durably or staged. A result that cannot
   * be made again (an unsafe tool's) is durable at once; one that can rides in the next commit.
   */
  journal(source: Source): { result: boolean; durable: boolean };
  /** What the budget is told a served outcome used. */
  settle(p: P): Payload<'budget.settle'>;
  /** What a call cut off by its signal (a timeout) used: a tool call was made, so it counts; an LLM call has nothing to show and frees its grant (left out). */
  cutOff?(key: string): Payload<'budget.settle'>;
  /** What an outcome adds to the actor's usage. */
  usage(p: P): Partial<Usage>;
  /** A result read back (from the log or a recording) as this call's payload. */
  read(recorded: unknown, key: string): P;
  /** Make the call now. */
  live(input: I, step: Step): Promise<W>;
  /** A live answer as the result's payload. */
  ok(answer: W, key: string): P;
  /**
   * A call whose intent was already in the log (in flight at a crash): its answer when one can be
   * found without calling again, undefined to call again under the same key. Throws when neither is safe.
   */
  reconcile?(input: I, step: Step): Promise<{ answer: W } | undefined>;
  /** Its effect class is `unsafe`: made at most once, never live in a replay unless allowed. */
  unsafe(): boolean;
  /** Which parts of the arguments and result are secret (a tool). */
  secrets?: ToolSecrets;
  /** The effect's span: its name and attributes, what it says when the step ends, and how it ends. */
  span: {
    name: string;
    attributes: Attributes;
    kind?: SpanKind;
    /** Set what the outcome shows; an error to end the span with when the outcome is one. */
    ended(span: Span, p: P): ErrorInfo | undefined;
    failed(span: Span, e: unknown): ErrorInfo;
  };
}

/** A step under way, as interceptors see it: the spec, its actor and signal; from `admit` on, its key. */
export interface Step {
  readonly actor: StepActor;
  readonly spec: StepSpec<unknown, unknown, unknown>;
  readonly signal: AbortSignal;
  /** `actorPath/n`: empty before `admit`. */
  key: string;
  /** The effect's span, while one is open (tracing). */
  span?: Span;
  /** The budget's grant, once given. */
  grant?: Payload<'budget.granted'>;
  /** Where the outcome comes from, once the intent is journaled. */
  source?: Source;
}

/** How an effect ends, for what closes it: with an outcome, a failure, or cut off by its signal. */
export type End = { result: unknown } | 'failed' | 'cut-off';

/**
 * A part of every step. Hooks run in the order of the step below; within a hook, in the order the
 * interceptors are listed. Each may be left out.
 */
export interface Interceptor {
  /** Around the whole step. */
  around?<P>(step: Step, next: () => Promise<P>): Promise<P>;
  /** Before the effect takes its key: may stop it (throw). */
  begin?(step: Step): void;
  /**
   * The key is taken and nothing is journaled yet: stop the effect (throw), refuse it (returned:
   * the caller hears it as an outcome if the effect has such outcomes, nothing is journaled), or
   * let it through.
   */
  admit?(step: Step): Promise<AoError | undefined> | AoError | undefined;
  /** The intent is journaled and `step.source` says where the outcome comes from. */
  serve?(step: Step): void;
  /** Just before a live call: stop it (throw), refuse it (an outcome, journaled), or change its input. */
  open?(step: Step, input: unknown): Promise<{ input: unknown } | { refused: ErrorInfo }> | { input: unknown };
  /** A live (or reconciled) answer before it is journaled or returned. */
  seal?(step: Step, answer: unknown): Promise<unknown>;
  /** Envelopes that commit with the effect's end (in the same append). */
  close?(step: Step, end: End): Emission[];
}

/** Aborted because the actor was stopped (its run is ending): such an actor writes nothing more. */
export const stopped = (signal: AbortSignal): boolean => signal.aborted && isAoError(signal.reason) && signal.reason.code === 'AO_NODE_CANCELLED';

export function errorInfo(e: unknown, fallback: ErrorInfo['code'] = 'AO_INTERNAL'): ErrorInfo {
  if (isAoError(e)) return { code: e.code, message: e.message, ...(e.field ? { details: { field: e.field } } : {}) };
  return { code: fallback, message: e instanceof Error ? e.message : String(e) };
}

/** The key a tool is given to make a repeated call harmless: the run's id and the effect key. */
export const idempotencyKey = (step: Step): string => `${step.actor.s.runId}/${step.key}`;

/** The dedupe key of an effect's result envelope. */
export const resultKey = (step: Step): string => `${step.key}/${step.spec.result.suffix}`;

/**
 * Run one effect through its interceptors: the core below (journal the intent; serve from the log,
 * a recording or live; journal the outcome) with each interceptor's hooks at their places.
 */
export function runStep<I, W, P>(chain: readonly Interceptor[], actor: StepActor, spec: StepSpec<I, W, P>, signal: AbortSignal): Promise<P> {
  const step: Step = { actor, spec, signal, key: '' };
  const core = (): Promise<P> => journaled(chain, step, spec);
  // The first interceptor listed is the outermost.
  const run = chain.reduceRight<() => Promise<P>>((next, i) => (i.around ? () => i.around!(step, next) : next), core);
  return run();
}

async function journaled<I, W, P>(chain: readonly Interceptor[], step: Step, spec: StepSpec<I, W, P>): Promise<P> {
  const { actor, signal } = step;
  const journal = actor.s.journal;
  // A stopped or timed-out actor starts nothing new (its work may still be unwinding).
  signal.throwIfAborted();
  for (const i of chain) i.begin?.(step);
  step.key = actor.nextKey();
  for (const i of chain) {
    const refused = await i.admit?.(step);
    if (!refused) continue;
    if ('outcome' in spec.failure) return spec.failure.outcome({ code: refused.code, message: refused.message }, step.key);
    throw refused;
  }
  const { intent, input } = spec.granted(step.key, step.grant);
  const intentKey = `${step.key}/${spec.request.suffix}`;
  // Its intent already in the log: the call was in flight when the process stopped.
  const inFlight = spec.reconcile !== undefined && journal.recorded(intentKey) !== undefined;
  // The durability point: the intent commits at once, with the budget's request and grant staged before it.
  await actor.emit([{ from: actor.path, to: spec.endpoint, ...intent, key: intentKey }], false, spec.request.turn);

  const logged = journal.recorded(resultKey(step));
  step.source = logged ? 'log' : journal.recording(resultKey(step)) ? 'recording' : 'live';
  for (const i of chain) i.serve?.(step);
  if (logged) return concluded(chain, step, spec, spec.read(logged.payload, step.key));
  const failed = 'type' in spec.failure ? spec.failure : undefined;
  const loggedFailure = failed && journal.recorded(`${step.key}/${failed.suffix}`);
  if (loggedFailure) throw new AoError(spec.failure.code, requirePayload(loggedFailure, failed.type).error.message, { retryable: true });
  // A recorded replay: the original's outcome (or failure) instead of a call.
  const replayed = journal.recording(resultKey(step));
  if (replayed) return concluded(chain, step, spec, spec.read(replayed.payload, step.key));
  const replayedFailure = failed && journal.recording(`${step.key}/${failed.suffix}`);
  if (replayedFailure) {
    const info = requirePayload(replayedFailure, failed.type).error;
    await actor.emit([...closing(chain, step, 'failed'), failure(step, failed, info)], false);
    throw new AoError(spec.failure.code, info.message, { retryable: true });
  }
  return live(chain, step, spec, input, inFlight);
}

async function live<I, W, P>(chain: readonly Interceptor[], step: Step, spec: StepSpec<I, W, P>, given: I, inFlight: boolean): Promise<P> {
  let input: unknown = given;
  for (const i of chain) {
    if (!i.open) continue;
    const opened = await i.open(step, input);
    if ('refused' in opened) return concluded(chain, step, spec, refusedAs(step, spec, opened.refused));
    input = opened.input;
  }
  // Interceptors change an input's values, never its shape.
  const real = input as I;
  if (inFlight) {
    const found = await spec.reconcile!(real, step);
    if (found) return concluded(chain, step, spec, spec.ok(await sealed(chain, step, found.answer), step.key));
  }
  let p: P;
  try {
    p = spec.ok(await sealed(chain, step, await spec.live(real, step)), step.key);
  } catch (e) {
    const { signal } = step;
    if (signal.aborted) {
      // Cut off (timed out): the grant is settled or freed, never leaked. A stopped actor writes
      // nothing more: its run is ending. Either way it is not the call's failure: nothing to record.
      if (!stopped(signal)) await step.actor.emit(closing(chain, step, 'cut-off'), true);
      throw isAoError(signal.reason) ? signal.reason : e;
    }
    const info = errorInfo(e, spec.failure.code);
    if ('outcome' in spec.failure) {
      p = spec.failure.outcome(info, step.key);
    } else {
      await step.actor.emit(closing(chain, step, 'failed'), true);
      await step.actor.emit([failure(step, spec.failure, info)], true);
      throw isAoError(e) ? e : new AoError(spec.failure.code, info.message, { cause: e, retryable: true });
    }
  }
  return concluded(chain, step, spec, p);
}

/** Count the outcome and journal it with what closes it, in one append. */
async function concluded<I, W, P>(chain: readonly Interceptor[], step: Step, spec: StepSpec<I, W, P>, p: P): Promise<P> {
  step.actor.spent(spec.usage(p));
  const { result, durable } = spec.journal(step.source ?? 'live');
  const envelope: Emission = { from: spec.endpoint, to: step.actor.path, ...spec.result.envelope(p), key: resultKey(step) };
  await step.actor.emit([...(result ? [envelope] : []), ...closing(chain, step, { result: p })], !durable);
  return p;
}

/** A refusal as the caller's outcome, or (an effect without such outcomes) as an error. */
function refusedAs<I, W, P>(step: Step, spec: StepSpec<I, W, P>, refused: ErrorInfo): P {
  if ('outcome' in spec.failure) return spec.failure.outcome(refused, step.key);
  // Its code came from an AoError.
  throw new AoError(refused.code as ErrorCode, refused.message, refused.details ? { details: refused.details } : {});
}

async function sealed<W>(chain: readonly Interceptor[], step: Step, answer: W): Promise<W> {
  let out: unknown = answer;
  for (const i of chain) if (i.seal) out = await i.seal(step, out);
  // Sealing replaces secret values by handles: the answer keeps its shape.
  return out as W;
}

function closing(chain: readonly Interceptor[], step: Step, end: End): Emission[] {
  return chain.flatMap((i) => i.close?.(step, end) ?? []);
}

/** The failure envelope of an effect whose failures are not outcomes. */
function failure(step: Step, f: { type: 'llm.failed'; suffix: string }, error: ErrorInfo): Emission {
  return { from: step.spec.endpoint, to: step.actor.path, type: f.type, payload: { key: step.key, error }, key: `${step.key}/${f.suffix}` };
}
