import { emitRunSpan, endSpan, meters, startSpan, traceContextOf } from '@ao/runtime';
import type { Attributes, Envelope, ErrorInfo, Span, TraceContext, Usage } from '@ao/runtime';
import type { RunServices } from './services.js';

/**
 * How the actors report to OpenTelemetry: one `node` span per node execution (a child of the run's
 * root span; a swarm's branches are children of its span), `chat` and `execute_tool` spans per call
 * (in Effects), a `supervisor.step` span per step, and the `run` span when the run ends. Every
 * envelope an actor sends carries its span's context, and the span of the actor receiving it links
 * to it: the actor graph can be rebuilt from the spans, fan-in included.
 */

/** The span of one node (or branch) execution, started when its start message is handled. */
export function nodeSpan(
  s: RunServices,
  start: Envelope,
  o: { name: 'node' | 'node.branch'; node: string; kind: string; iteration?: number; attempt: number; branch?: number; actor: string },
): { span: Span; trace: TraceContext; started: number } {
  const span = startSpan(o.name, {
    // A branch hangs off its swarm's span (the sender of its start); a node off the run's root.
    parent: o.name === 'node.branch' ? start.trace : s.trace,
    links: [start.trace],
    attributes: {
      ...s.spanAttributes,
      'ao.node': o.node,
      'ao.agent.kind': o.kind,
      'ao.actor': o.actor,
      'ao.attempt': o.attempt,
      ...(o.iteration !== undefined ? { 'ao.iteration': o.iteration } : {}),
      ...(o.branch !== undefined ? { 'ao.branch': o.branch } : {}),
    },
  });
  return { span, trace: traceContextOf(span) ?? s.trace, started: performance.now() };
}

/** End a node span and count its duration. */
export function nodeEnded(s: RunServices, n: { span: Span; started: number }, node: string, error?: ErrorInfo): void {
  endSpan(n.span, error);
  meters().stepDuration.record(performance.now() - n.started, {
    'ao.graph': String(s.spanAttributes['ao.graph']),
    'ao.node': node,
    status: error ? 'failed' : 'succeeded',
    ...replayAttr(s),
  });
}

/** The supervisor's span for one step, linked to the message that made it. */
export function stepSpan(s: RunServices, step: number, cause: TraceContext | null | undefined): { span: Span; trace: TraceContext } {
  const span = startSpan('supervisor.step', { parent: s.trace, links: [cause], attributes: { ...s.spanAttributes, 'ao.step': step } });
  return { span, trace: traceContextOf(span) ?? s.trace };
}

const replayAttr = (s: RunServices): Attributes => (s.spanAttributes.replay ? { replay: true } : {});

/** The run ended: its root span (see emitRunSpan) and the finished-runs metric. */
export function runEnded(
  s: RunServices,
  status: string,
  error?: ErrorInfo | null,
  events: Array<{ name: string; attributes: Attributes }> = [],
  usage: Usage = s.ledgerAt([]).usage,
): void {
  emitRunSpan({
    trace: s.trace,
    startTime: s.startedAt,
    attributes: {
      ...s.spanAttributes,
      'ao.run.status': status,
      // The run's usage, the same figure as its record and run.finished (its settlements).
      'gen_ai.usage.input_tokens': usage.inputTokens,
      'gen_ai.usage.output_tokens': usage.outputTokens,
      'ao.usage.total_tokens': usage.totalTokens,
      'ao.usage.llm_calls': usage.llmCalls,
      'ao.usage.tool_calls': usage.toolCalls,
    },
    ...(error && status !== 'succeeded' ? { error } : {}),
    events,
  });
  meters().runsFinished.add(1, { 'ao.graph': String(s.spanAttributes['ao.graph']), status, ...replayAttr(s) });
}

export { replayAttr };
