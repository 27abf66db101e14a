import { AoError } from '@ao/graphs';
import { actorPath, describeChange, emitterOf, endSpan, gistOf, meters, payloadField, payloadOf, requirePayload, startChildSpan } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import type { Payload } from '../messages.js';
import type { RunServices } from '../services.js';
import { budgetMessage } from '../budget/ledger.js';
import { openArgs, sealOutcome } from './secrets.js';
import { idempotencyKey, resultKey, stopped } from './step.js';
import type { Emission, Interceptor, Step } from './step.js';

/**
 * The interceptors every effect's step goes through (./step.ts): recording and replay, the
 * budget, secrets and tracing. Each keeps one concern out of the core and out of the others.
 */

/** Where every run's budget actor lives. */
export const BUDGET_PATH = actorPath('supervisor', 'budget');
/** Fail closed: a budget actor that does not answer in this time approves nothing. */
export const BUDGET_TIMEOUT_MS = 10_000;

/**
 * Recording and replay. In a recorded replay that has diverged, nothing runs live: the replay is
 * over, only the divergence matters (a lenient replay goes on live). A replay serving recordings
 * checks each request against the original's before anything is asked. An unsafe tool is not
 * called live in a replay unless that was explicitly allowed (a recorded result is fine).
 */
export const recording: Interceptor = {
  begin: (step) => guardReplay(step.actor.s),
  async admit(step) {
    await checkRequest(step);
    guardReplay(step.actor.s);
    refuseUnsafe(step);
    return undefined;
  },
  open(step, input) {
    guardReplay(step.actor.s);
    return { input };
  },
};

function guardReplay(s: RunServices): void {
  const r = s.journal.replay;
  if (r?.mode === 'recorded' && r.divergence) {
    throw new AoError('AO_REPLAY_DIVERGED', `the replay diverged at step ${r.divergence.step} (${r.divergence.actor}); no more calls are made`, {
      retryable: false,
    });
  }
}

/** A request whose content hash differs from the original's is a divergence, reported as a readable diff. */
async function checkRequest(step: Step): Promise<void> {
  const { s, path } = step.actor;
  const { type, suffix, content, hash } = step.spec.request;
  const r = s.journal.replay;
  const rec = s.journal.recording(`${step.key}/${suffix}`);
  if (!r?.serving || !rec) return;
  // Any shape a recording holds (an older writer's too) is compared field by field.
  if (payloadField(rec.payload, 'hash') === hash) return;
  const before = Object.fromEntries(Object.keys(content).map((k) => [k, payloadField(rec.payload, k)]));
  const diff = describeChange(before, content);
  await s.journal.diverged({
    step: -1,
    actor: emitterOf({ from: path, to: rec.to }),
    expected: gistOf(rec, [r.of, r.runId]),
    actual: { seq: 0, type, from: path, to: rec.to, payload: { key: step.key, ...content, hash } },
    diff: diff.length ? [`${type} changed:`, ...diff] : [`${type}: same fields, different content hash (tool schemas or parameters changed)`],
  });
}

function refuseUnsafe(step: Step): void {
  const { s } = step.actor;
  const { name } = step.spec;
  const unsafe = step.spec.unsafe();
  const allow = s.replay?.overrides?.allowUnsafe;
  if (s.replay && unsafe && !s.journal.recording(resultKey(step)) && !s.journal.recorded(resultKey(step)) && allow !== true && !allow?.includes(name)) {
    throw new AoError('AO_REPLAY_UNSAFE_TOOL', `unsafe tool "${name}" is not called live in a replay; allow it with overrides.allowUnsafe: ["${name}"]`, {
      details: { tool: name, key: step.key },
      retryable: false,
    });
  }
}

/**
 * The budget: every effect is approved by the run's budget actor before its intent is journaled,
 * and settled (what it used) or released (it used nothing) when it ends. The request and the
 * decision are staged: they commit with the intent they approve. Its settlement commits with its
 * outcome, in the same append.
 */
export const budget: Interceptor = {
  async admit(step) {
    const decision = await approve(step);
    if (decision.type === 'budget.granted') {
      step.grant = requirePayload(decision, 'budget.granted');
      return undefined;
    }
    const refused = refusal(step, decision);
    // A per-tool cap refuses this tool only: the model hears why and may go on with others.
    if (refused.code === 'AO_BUDGET_TOOL_CAP') return refused;
    throw refused;
  },
  close(step, end) {
    const { path } = step.actor;
    const settle = (payload: Payload<'budget.settle'>): Emission => ({
      from: path,
      to: BUDGET_PATH,
      type: 'budget.settle',
      payload,
      key: `${step.key}/settle`,
    });
    const release: Emission = { from: path, to: BUDGET_PATH, type: 'budget.release', payload: { key: step.key }, key: `${step.key}/release` };
    if (end === 'failed') return [release];
    if (end === 'cut-off') return step.spec.cutOff ? [settle(step.spec.cutOff(step.key))] : [release];
    return [settle(step.spec.settle(end.result))];
  },
};

/**
 * Ask the budget actor before a call. A decision already in the log (the call is being replayed
 * after a crash) is read back instead of asked again.
 */
async function approve(step: Step): Promise<Envelope> {
  const { s, path } = step.actor;
  const req = await step.spec.budget(step.key);
  const recorded = s.journal.recorded(`${req.key}/grant`);
  if (recorded) return recorded;
  // Held for a person, or waiting for calls in flight to settle: the same request's final answer
  // comes later, awaited without the timeout (a person's wait, or the run's wall clock, bounds it).
  const reply = s.awaitReply(s.journal.idOf(`${req.key}/budget`), BUDGET_TIMEOUT_MS, step.signal, (interim) => {
    const p = payloadOf(interim, 'budget.waiting');
    if (p) {
      step.span?.addEvent('budget.waiting', {
        'ao.budget.limit': p.limit,
        'ao.budget.scope': p.scope,
        'ao.budget.value': p.value,
        'ao.budget.used': p.used,
        'ao.budget.reserved': p.reserved,
        'ao.budget.in_flight': p.inFlight,
      });
    }
  });
  // If the request cannot even be written (the run is ending), the reply is never awaited:
  // its later rejection must not go unhandled (that would take the process down).
  reply.catch(() => undefined);
  // Staged: the request and the budget's decision commit with the call they approve.
  await step.actor.emit([{ from: path, to: BUDGET_PATH, type: 'budget.request', payload: req, key: `${req.key}/budget` }], true);
  try {
    return await reply;
  } catch (e) {
    // Given up while it waited (timed out, or its node was cut off; not a run that is ending): the
    // budget forgets the request, so a grant it might still make reserves nothing for no one.
    if (!stopped(step.signal) && step.signal.aborted)
      await step.actor
        .emit([{ from: path, to: BUDGET_PATH, type: 'budget.release', payload: { key: req.key }, key: `${req.key}/release` }], true)
        .catch(() => undefined);
    throw e;
  }
}

function refusal(step: Step, env: Envelope): AoError {
  const p = requirePayload(env, 'budget.refused');
  meters().refusals.add(1, step.actor.attrs({ limit: p.limit }));
  step.span?.addEvent('budget.refused', {
    'ao.budget.limit': p.limit,
    'ao.budget.scope': p.scope,
    'ao.budget.value': p.value,
    'ao.budget.used': p.used,
    'ao.budget.stop': p.stop,
    ...(p.tool ? { 'gen_ai.tool.name': p.tool } : {}),
  });
  const { limit, scope, value, used, reserved, inFlight, asked, tool } = p;
  const extra = { ...(reserved !== undefined ? { reserved } : {}), ...(inFlight !== undefined ? { inFlight } : {}), ...(asked !== undefined ? { asked } : {}) };
  return new AoError(p.stop ? 'AO_BUDGET_EXCEEDED' : 'AO_BUDGET_TOOL_CAP', budgetMessage({ limit, scope, value, used, ...extra, ...(tool ? { tool } : {}) }), {
    details: { limit, scope, value, used, ...extra, actor: step.actor.path, ...(tool ? { tool } : {}) },
  });
}

/**
 * Secrets (see ./secrets.ts): handles in a tool's arguments become values only just before a live
 * call, after its intent (which keeps the handles) is journaled: nothing before (log, span, hash,
 * budget) ever holds the secret. Secret parts of a live answer are sealed before it is journaled
 * or seen. An effect without secret marks passes through.
 */
export const secrets: Interceptor = {
  async open(step, input) {
    const sec = step.spec.secrets;
    if (!sec) return { input };
    const opened = await openArgs(step.actor.s.secrets, sec, step.spec.name, input);
    return opened.ok ? { input: opened.args } : { refused: opened.error };
  },
  seal: (step, answer) => (step.spec.secrets ? sealOutcome(step.actor.s.secrets, step.spec.secrets, step.key, answer) : Promise.resolve(answer)),
};

/**
 * Tracing: each effect is a span under its node's span (`chat`, `execute_tool`), named and
 * described by its spec; it carries the effect key once taken (and a tool's idempotency key, which
 * the tool is given) and where the outcome came from (`log`, `recording` or `live`).
 */
export const tracing: Interceptor = {
  async around(step, next) {
    const { name, attributes, kind, ended, failed } = step.spec.span;
    const span = startChildSpan(step.actor.span, name, attributes, kind);
    step.span = span;
    try {
      const p = await next();
      endSpan(span, ended(span, p));
      return p;
    } catch (e) {
      endSpan(span, failed(span, e));
      throw e;
    }
  },
  admit(step) {
    step.span?.setAttributes({ 'ao.effect.key': step.key, ...(step.spec.kind === 'tool' ? { 'ao.idempotency_key': idempotencyKey(step) } : {}) });
    return undefined;
  },
  serve(step) {
    if (step.source) step.span?.setAttribute('ao.effect.source', step.source);
  },
};

/**
 * The interceptors of each kind of effect, in the order their hooks run (the first with `around`
 * is the outermost). An LLM call has no secrets. Tracing and recording swap places: an LLM call's
 * span is given its effect key only once the replay check has passed, a tool call's (with its
 * idempotency key) before it, so a call the check stops reads in its span as it always has.
 */
export const LLM_STEP: readonly Interceptor[] = [recording, tracing, budget];
export const TOOL_STEP: readonly Interceptor[] = [tracing, recording, budget, secrets];
