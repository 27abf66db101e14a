import { AoError } from '@ao/graphs';
import { actorPath, captureContent, contentHash, meters, redactArgs, toolSecrets } from '@ao/runtime';
import type { EffectClass, ErrorInfo } from '@ao/runtime';
import { errorInfo, idempotencyKey } from './step.js';
import type { Step, StepActor, StepSpec } from './step.js';

export type ToolOutcome = { ok: true; result: unknown } | { ok: false; error: ErrorInfo };

/** A tool's outcome as `tool.result` records it. */
export type RecordedTool = { key: string; name: string } & ToolOutcome;

/**
 * One tool call as a step: `tool.call` to `tool/<name>`, answered by `tool.result`. A bad
 * argument or a failing handler is an outcome, not a throw (the model sees it). The call is given
 * the idempotency key `runId/actorPath/n`. Its budget counts one call of the tool, settled when it
 * ends, even cut off: the call was made. An unsafe tool's result is durable at once (lost, its
 * call could not be made again); any other's rides in the next commit (lost, it is made again
 * under the same idempotency key). Arguments marked secret are redacted in the log and the span.
 */
export function toolStep(actor: StepActor, node: string, name: string, args: unknown): StepSpec<unknown, unknown, RecordedTool> {
  const { s, path } = actor;
  const def = s.tools.get(name);
  const sec = toolSecrets(def);
  const shown = redactArgs(sec, args);
  const endpoint = actorPath('tool', name.replace(/[^A-Za-z0-9_.@-]/g, '_'));
  // The hash covers the arguments as given (literal secrets included, handles as handles): a
  // recorded replay compares true arguments while the log shows them redacted.
  const hash = contentHash({ name, args: args ?? null, schema: def ? s.tools.specs([name])[0]!.parameters : null });
  // The class of this call (`effectOf` may look at the arguments), asked once, when first needed.
  let cls: { effect: EffectClass | undefined } | undefined;
  const effect = () => (cls ??= { effect: s.tools.effectOf(name, args) }).effect;
  const used = (key: string) => ({ key, tokens: 0, usd: 0, tool: name });
  const context = (step: Step) => ({ runId: s.runId, nodeId: node, idempotencyKey: idempotencyKey(step), signal: step.signal });
  return {
    kind: 'tool',
    name,
    endpoint,
    request: { type: 'tool.call', suffix: 'call', content: { name, args: shown }, hash },
    budget: (key) => ({ kind: 'tool', key, node: actor.node, actor: path, tool: name }),
    granted: (key) => ({ input: args, intent: { type: 'tool.call', payload: { key, name, args: shown, hash } } }),
    result: { suffix: 'result', envelope: (p) => ({ type: 'tool.result', payload: p }) },
    failure: { code: 'AO_TOOL_FAILED', outcome: (error, key) => ({ key, name, ok: false, error }) },
    journal: () => ({ result: true, durable: effect() === 'unsafe' }),
    settle: (p) => used(p.key),
    cutOff: used,
    usage: () => ({ toolCalls: 1, perTool: { [name]: 1 } }),
    read: (recorded, key) => ({ key, name, ...outcomeOf(recorded) }),
    live: (real, step) => s.tools.call(name, real, context(step)),
    ok: (result, key) => ({ key, name, ok: true, result }),
    /** A call in flight at a crash: called again when that is safe, else asked for its status, else never repeated. */
    async reconcile(real, step) {
      if (!def || effect() !== 'unsafe') return undefined; // pure, read, idempotent: call again, same key
      const ctx = context(step);
      if (def.status) {
        const st = await def.status(s.tools.validate(name, real) as never, ctx);
        await actor.emit(
          [{ from: endpoint, to: path, type: 'effect.reconciled', payload: { key: step.key, name, done: st.done }, key: `${step.key}/reconciled` }],
          false,
        );
        return st.done ? { answer: st.result } : undefined;
      }
      const message = `unsafe tool "${name}" was in flight when the process stopped; whether it took effect is unknown (idempotency key ${ctx.idempotencyKey})`;
      await actor.emit(
        [{ from: endpoint, to: path, type: 'effect.unknown_outcome', payload: { key: step.key, name, args: shown }, key: `${step.key}/unknown` }],
        false,
      );
      throw new AoError('AO_EFFECT_UNKNOWN_OUTCOME', message, { details: { key: step.key, idempotencyKey: ctx.idempotencyKey, tool: name } });
    },
    unsafe: () => effect() === 'unsafe',
    secrets: sec,
    // An `execute_tool` span (GenAI semantic conventions).
    span: {
      name: `execute_tool ${name}`,
      attributes: {
        ...s.spanAttributes,
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': name,
        ...(captureContent() ? { 'gen_ai.tool.call.arguments': JSON.stringify(shown ?? null) } : {}),
      },
      ended(span, p) {
        span.setAttribute('ao.tool.outcome', p.ok ? 'ok' : 'error');
        if (captureContent() && p.ok) span.setAttribute('gen_ai.tool.call.result', JSON.stringify(p.result ?? null));
        meters().toolCalls.add(1, actor.attrs({ 'gen_ai.tool.name': name, outcome: p.ok ? 'ok' : 'error' }));
        return p.ok ? undefined : p.error;
      },
      failed(span, e) {
        span.setAttribute('ao.tool.outcome', 'refused_or_failed');
        meters().toolCalls.add(1, actor.attrs({ 'gen_ai.tool.name': name, outcome: 'failed' }));
        return errorInfo(e, 'AO_TOOL_FAILED');
      },
    },
  };
}

export function outcomeOf(p: unknown): ToolOutcome {
  const r = p as { ok: boolean; result?: unknown; error?: ErrorInfo };
  return r.ok ? { ok: true, result: r.result } : { ok: false, error: r.error! };
}
