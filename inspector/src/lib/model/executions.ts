import { fieldsOf } from '../api/types';
import type { Envelope } from '../api/types';

/** A chat message of an LLM request, as the inspector reads it. */
export interface PromptMessage {
  role: string;
  content: unknown;
  toolCalls?: ToolCallAsked[];
  name?: string;
}

export interface ToolCallAsked {
  id?: string;
  name: string;
  arguments: unknown;
}

export interface ErrorText {
  code?: string;
  message: string;
}

/** A budget envelope about one call or execution, in words (`granted 1,093 tokens`). */
export interface BudgetDecision {
  seq: number;
  type: string;
  text: string;
}

/** One LLM or tool call of an execution: its request, its outcome, what it cost. */
export interface CallView {
  key: string;
  kind: 'llm' | 'tool';
  actor: string;
  /** The model profile (LLM) or the tool's name. */
  name: string;
  start: string;
  end: string | null;
  seq: number;
  /** LLM: the prompt as sent. */
  messages?: PromptMessage[];
  /** LLM: the answer's text and the tools it asked for. */
  answer?: { text: string; toolCalls: ToolCallAsked[]; model?: string; finishReason?: string };
  /** Tool: arguments and result. */
  args?: unknown;
  result?: unknown;
  ok?: boolean;
  error?: ErrorText;
  tokens: number;
  usd: number;
  budget: BudgetDecision[];
}

/** One execution of a node (an iteration and attempt, or one branch of a swarm node). */
export interface ExecutionView {
  node: string;
  /** The actor that ran it (`supervisor/draft@2.1`, `supervisor/analyse/branch-2`). */
  actor: string;
  iteration: number;
  attempt: number;
  branch?: number;
  status: 'running' | 'succeeded' | 'failed';
  start: string;
  end: string | null;
  seq: number;
  output?: unknown;
  error?: ErrorText;
  calls: CallView[];
  /** Retries the supervisor scheduled after this execution failed. */
  retries: Array<{ attempt: number; delayMs: number; error?: ErrorText }>;
  /** Budget envelopes about this execution not tied to one of its calls. */
  budget: BudgetDecision[];
  tokens: number;
  usd: number;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const errorOf = (v: unknown): ErrorText | undefined => {
  if (!v || typeof v !== 'object') return typeof v === 'string' ? { message: v } : undefined;
  const o = v as { code?: unknown; message?: unknown };
  return { ...(typeof o.code === 'string' ? { code: o.code } : {}), message: typeof o.message === 'string' ? o.message : JSON.stringify(v) };
};

function toolCallsOf(v: unknown): ToolCallAsked[] {
  if (!Array.isArray(v)) return [];
  return v.map((t: { id?: unknown; name?: unknown; arguments?: unknown; function?: { name?: unknown; arguments?: unknown } }) => ({
    ...(typeof t.id === 'string' ? { id: t.id } : {}),
    name: str(t.name ?? t.function?.name),
    arguments: t.arguments ?? t.function?.arguments,
  }));
}

function messagesOf(v: unknown): PromptMessage[] {
  if (!Array.isArray(v)) return [];
  return v.map((m: Record<string, unknown>) => {
    const calls = toolCallsOf(m.toolCalls ?? m.tool_calls);
    return {
      role: str(m.role) || '?',
      content: m.content,
      ...(calls.length ? { toolCalls: calls } : {}),
      ...(typeof m.name === 'string' ? { name: m.name } : typeof m.toolCallId === 'string' ? { name: m.toolCallId } : {}),
    };
  });
}

const amountText = (p: Record<string, unknown>) =>
  [
    num(p.tokens) ? `${num(p.tokens).toLocaleString('en-US')} tokens` : '',
    num(p.usd) ? `$${num(p.usd).toFixed(4)}` : '',
    typeof p.tool === 'string' ? `1 ${p.tool} call` : '',
  ]
    .filter(Boolean)
    .join(', ') || 'nothing';

/** A budget envelope in words. */
export function budgetText(e: Envelope): string {
  const p = fieldsOf(e.payload);
  const verb = e.type.slice('budget.'.length);
  switch (e.type) {
    case 'budget.request':
      return p.kind === 'tool'
        ? `asked for 1 ${str(p.tool)} call`
        : `asked for ${num(p.promptTokens) + num(p.maxTokens)} tokens (${num(p.promptTokens)} prompt + ${num(p.maxTokens)} max answer)`;
    case 'budget.granted':
      return `granted: ${amountText((p.reservation ?? {}) as Record<string, unknown>)} reserved`;
    case 'budget.settle':
      return `settled: ${amountText(p)}`;
    case 'budget.release':
      return 'released unused reservation';
    case 'budget.waiting':
      return `waiting for calls in flight (limit ${str(p.limit)})`;
    case 'budget.refused':
      return `refused${p.limit ? ` (limit ${str(p.limit)})` : ''}${p.reason ? `: ${str(p.reason)}` : ''}${(p.error as { message?: string } | undefined)?.message ? `: ${(p.error as { message: string }).message}` : ''}`;
    default:
      return `${verb} ${JSON.stringify(p).slice(0, 160)}`;
  }
}

/** The execution actor a call's actor belongs to: itself, or the closest registered ancestor. */
function ownerOf(actor: string, byActor: Map<string, ExecutionView>): ExecutionView | undefined {
  for (let a = actor; a.includes('/'); a = a.slice(0, a.lastIndexOf('/'))) {
    const x = byActor.get(a);
    if (x) return x;
  }
  return undefined;
}

/**
 * Every node execution of a run and its calls, from the run's envelopes, in order of start.
 * Computed on demand (the drawer and the timeline call it), never per envelope as it arrives.
 */
export function executions(events: readonly Envelope[]): ExecutionView[] {
  const f = new ExecutionsFold();
  for (const e of events) f.apply(e);
  return f.done();
}

/** The state `executions` folds the envelopes into. */
class ExecutionsFold {
  private readonly out: ExecutionView[] = [];
  private readonly byActor = new Map<string, ExecutionView>();
  private readonly calls = new Map<string, { call: CallView; exec: ExecutionView | undefined }>();
  private readonly latestOf = new Map<string, ExecutionView>();
  private readonly decided: Array<{ key: string; d: BudgetDecision; exec: ExecutionView | undefined }> = [];

  apply(e: Envelope): void {
    const p = fieldsOf(e.payload);
    switch (e.type) {
      case 'node.start':
      case 'branch.start':
        return this.start(e, p);
      case 'node.completed':
      case 'node.failed':
      case 'branch.completed':
      case 'branch.failed':
        return this.end(e, p);
      case 'node.retry_scheduled': {
        const x = this.latestOf.get(str(p.node));
        const err = errorOf(p.error);
        x?.retries.push({ attempt: num(p.attempt), delayMs: num(p.delayMs), ...(err ? { error: err } : {}) });
        return;
      }
      case 'llm.request':
        return this.call(e, {
          key: str(p.key),
          kind: 'llm',
          actor: e.from,
          name: str(p.profile) || e.to.replace(/^llm\//, ''),
          start: e.time,
          end: null,
          seq: e.seq,
          messages: messagesOf(p.messages),
          tokens: 0,
          usd: 0,
          budget: [],
        });
      case 'llm.response':
      case 'llm.failed':
        return this.llmEnd(e, p);
      case 'tool.call':
        return this.call(e, {
          key: str(p.key),
          kind: 'tool',
          actor: e.from,
          name: str(p.name) || e.to.replace(/^tool\//, ''),
          start: e.time,
          end: null,
          seq: e.seq,
          args: p.args,
          tokens: 0,
          usd: 0,
          budget: [],
        });
      case 'tool.result':
        return this.toolEnd(e, p);
      default:
        if (e.type.startsWith('budget.')) this.budget(e, p);
    }
  }

  private start(e: Envelope, p: Record<string, unknown>): void {
    const x: ExecutionView = {
      node: str(p.node),
      actor: e.to,
      iteration: num(p.iteration) || (e.type === 'branch.start' ? (this.latestOf.get(str(p.node))?.iteration ?? 1) : 1),
      attempt: num(p.attempt) || 1,
      ...(e.type === 'branch.start' ? { branch: num(p.branch) } : {}),
      status: 'running',
      start: e.time,
      end: null,
      seq: e.seq,
      calls: [],
      retries: [],
      budget: [],
      tokens: 0,
      usd: 0,
    };
    this.out.push(x);
    this.byActor.set(e.to, x);
    if (e.type === 'node.start') this.latestOf.set(x.node, x);
  }

  private end(e: Envelope, p: Record<string, unknown>): void {
    const x = this.byActor.get(e.from) ?? (e.type.startsWith('node.') ? this.latestOf.get(str(p.node)) : undefined);
    if (!x) return;
    x.status = e.type.endsWith('completed') ? 'succeeded' : 'failed';
    x.end = e.time;
    if ('output' in p) x.output = p.output;
    const err = errorOf(p.error);
    if (err) x.error = err;
  }

  /** An LLM request or a tool call: filed under the execution its actor belongs to. */
  private call(e: Envelope, call: CallView): void {
    const exec = ownerOf(e.from, this.byActor);
    this.calls.set(call.key, { call, exec });
    exec?.calls.push(call);
  }

  private llmEnd(e: Envelope, p: Record<string, unknown>): void {
    const c = this.calls.get(str(p.key))?.call;
    if (!c) return;
    c.end = e.time;
    if (e.type === 'llm.response') {
      c.answer = {
        text: typeof p.content === 'string' ? p.content : JSON.stringify(p.content ?? ''),
        toolCalls: toolCallsOf(p.toolCalls),
        ...(typeof p.model === 'string' ? { model: p.model } : {}),
        ...(typeof p.finishReason === 'string' ? { finishReason: p.finishReason } : {}),
      };
    } else c.error = errorOf(p.error) ?? { message: 'failed' };
  }

  private toolEnd(e: Envelope, p: Record<string, unknown>): void {
    const c = this.calls.get(str(p.key))?.call;
    if (!c) return;
    c.end = e.time;
    c.ok = p.ok !== false;
    if ('result' in p) c.result = p.result;
    const err = errorOf(p.error);
    if (err) c.error = err;
  }

  private budget(e: Envelope, p: Record<string, unknown>): void {
    const key = str(p.key);
    const d: BudgetDecision = { seq: e.seq, type: e.type, text: budgetText(e) };
    const known = this.calls.get(key);
    const exec =
      known?.exec ??
      (typeof p.actor === 'string' ? ownerOf(p.actor, this.byActor) : undefined) ??
      (key.includes('/') ? ownerOf(key.slice(0, key.lastIndexOf('/')), this.byActor) : undefined) ??
      (typeof p.node === 'string' ? this.latestOf.get(p.node) : undefined);
    if (e.type === 'budget.settle') {
      if (known) {
        known.call.tokens += num(p.tokens);
        known.call.usd += num(p.usd);
      }
      if (exec) {
        exec.tokens += num(p.tokens);
        exec.usd += num(p.usd);
      }
    }
    // A call's request and grant come before the call: filed under it at the end, by key.
    if (key) this.decided.push({ key, d, exec });
    else exec?.budget.push(d);
  }

  /** The executions, each call with its budget decisions. */
  done(): ExecutionView[] {
    for (const { key, d, exec } of this.decided) {
      const c = this.calls.get(key)?.call;
      if (c) c.budget.push(d);
      else exec?.budget.push(d);
    }
    return this.out;
  }
}

/** The executions of one node, in order. */
export const executionsOf = (events: readonly Envelope[], node: string): ExecutionView[] => executions(events).filter((x) => x.node === node);
