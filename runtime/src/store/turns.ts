import { canonicalJson } from '@ao/graphs';
import type { Usage } from './records.js';

/**
 * An agent's conversation, stored once, turn by turn (issue 22).
 *
 * Each `llm.request` that continues its actor's previous one (or whose agent asks for a resume
 * point) gets a **turn record** in the journal row of its commit (the row's `turns` column): the
 * messages it keeps of the previous request's, the messages it adds, and what the agent loop
 * adds besides: the tool calls it made since (as its output lists them) and, every few turns,
 * its state (a resume point). The request's stored payload refers to its record instead of
 * holding its messages, and so does a `tool.result` of the same commit whose outcome the record
 * holds: the page a tool returned is stored once, in the record, though it is in the tool's
 * result, in the tool message of the next request and in the node's output.
 *
 * A resume reads an agent's records alone (one column of its rows, not their bodies) to restore
 * its conversation and go on from its last resume point instead of running every turn again.
 */

/** A tool call as an agent's output lists it (`NodeOutput.tools`): its name, arguments as shown, and outcome (its result, or its error). */
export interface UsedTool {
  name: string;
  args: unknown;
  ok: boolean;
  result?: unknown;
}

/**
 * An agent's state when it makes a request: enough to go on from there (its messages are the
 * request's). `seq` is the run's last seq before the request's first envelope: a resume reads the
 * log after it. `ledger` is the run's budget ledger as of `seq` (its checkpoint form).
 */
export interface AgentState {
  /** The start message of the execution (a state is only for the execution that wrote it). */
  start: string;
  /** The loop's turn this request opens (1 for the first). */
  turn: number;
  /** Effects the actor had taken before it (its next effect key is `n + 1`). */
  n: number;
  /** What the actor had used before it. */
  usage: Usage;
  seq: number;
  ledger: unknown;
}

/** What an agent loop adds to the record of its request (its messages come from the request). */
export interface TurnExtras {
  /** The tool calls made since its previous request, as its output lists them. */
  used?: UsedTool[];
  /** A resume point. */
  state?: AgentState;
}

/** A tool message the record derives from one of its tool calls: `{t: index in u, id: toolCallId, c: cut}`. */
export interface ToolMessageRef {
  t: number;
  id: string;
  c: number;
}

/** One turn record as stored (an element of a journal row's `turns`). */
export interface StoredTurn {
  /** The actor (the request's `from`). */
  a: string;
  /** The request's seq. */
  q: number;
  /** Messages kept of the actor's previous request. */
  k: number;
  /** Messages added after them: a message, or (no `role`) a tool message made from `u`. */
  m: unknown[];
  u?: UsedTool[];
  s?: AgentState;
}

/** Tool results are cut to this many characters in the tool message an agent sends back to the model. */
export const TOOL_MESSAGE_MAX_CHARS = 4000;

/**
 * The text of a tool message: the outcome's canonical JSON (keys sorted: the same result reads the
 * same whether it came from the tool or from the log), cut to `max` characters.
 */
export function toolMessageContent(o: { ok: boolean; result?: unknown; error?: unknown }, max = TOOL_MESSAGE_MAX_CHARS): string {
  const s = canonicalJson(o.ok ? (o.result ?? null) : { error: o.error });
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** The tool message made from a recorded tool call. */
export function toolMessageOf(u: UsedTool, id: string, max: number): { role: 'tool'; toolCallId: string; name: string; content: string } {
  return {
    role: 'tool',
    toolCallId: id,
    name: u.name,
    content: toolMessageContent(u.ok ? { ok: true, result: u.result } : { ok: false, error: u.result }, max),
  };
}

const isRef = (m: unknown): m is ToolMessageRef => typeof m === 'object' && m !== null && !('role' in m) && typeof (m as ToolMessageRef).t === 'number';

/**
 * A record's added messages, whole (tool messages made from its tool calls). Made once per record
 * object: a resume folds the same records twice (its resume points, then the conversation as of
 * the seq it reads the log after), and making a tool message writes its result's canonical JSON.
 */
export function addedMessages(t: Pick<StoredTurn, 'm' | 'u'>): unknown[] {
  let added = made.get(t);
  if (!added) {
    added = makeAdded(t);
    made.set(t, added);
  }
  return added;
}
const made = new WeakMap<object, unknown[]>();

function makeAdded(t: Pick<StoredTurn, 'm' | 'u'>): unknown[] {
  return t.m.map((m) => {
    if (!isRef(m)) return m;
    const u = t.u?.[m.t];
    if (!u) throw new Error(`a turn record's tool message refers to tool call ${m.t}, which it does not hold`);
    return toolMessageOf(u, m.id, m.c);
  });
}

/**
 * A request's added messages as its record stores them: each tool message that is exactly the one
 * made from the next of the record's tool calls (in order) is stored as a reference to it.
 */
export function packAdded(added: readonly unknown[], used: readonly UsedTool[] | undefined): unknown[] {
  if (!used?.length) return [...added];
  let next = 0;
  return added.map((m) => {
    const msg = m as { role?: unknown; toolCallId?: unknown };
    if (next >= used.length || msg?.role !== 'tool' || typeof msg.toolCallId !== 'string') return m;
    const ref: ToolMessageRef = { t: next, id: msg.toolCallId, c: TOOL_MESSAGE_MAX_CHARS };
    if (JSON.stringify(toolMessageOf(used[next]!, ref.id, ref.c)) !== JSON.stringify(m)) return m;
    next += 1;
    return ref;
  });
}

/** An agent's restore point found in its records: its state, its conversation then, and its tool calls until then. */
export interface AgentRestore {
  state: AgentState;
  /** The seq of the request the state is at. */
  request: number;
  messages: unknown[];
  used: UsedTool[];
}

/** A conversation as of one request of the actor: the request's seq and its messages (and, for the last, the tool calls of all its records). */
export interface ConversationAt {
  seq: number;
  messages: unknown[];
  used?: UsedTool[];
}

/**
 * An actor's records (of one run, in seq order, from its first) folded into its conversation. An
 * actor path is one execution of a node or branch, so its records are all of that execution's.
 * Returns its latest resume point (with its tool calls until then), the conversation as of its
 * last request at or before seq `upTo` (what a read of the log after `upTo` continues), and as of
 * its last request (what its next request continues). A record that continues a request before
 * the first one given starts nothing: the fold waits for one that keeps nothing.
 */
export function foldTurns(
  records: ReadonlyArray<StoredTurn>,
  actor: string,
  start: string,
  upTo: number,
): { restore?: AgentRestore; at?: ConversationAt; last?: ConversationAt } {
  // The conversation grows in place while requests only append to it; a request that keeps less
  // starts a new array, so a view (array, length) taken earlier stays true.
  let conv: unknown[] | undefined;
  const used: UsedTool[] = [];
  let restore: { state: AgentState; request: number; conv: unknown[]; len: number; used: number } | undefined;
  let at: { seq: number; conv: unknown[]; len: number } | undefined;
  let last: { seq: number; conv: unknown[]; len: number } | undefined;
  for (const r of records) {
    if (r.a !== actor) continue;
    if (r.u) used.push(...r.u);
    if (r.k > 0 && !conv) continue;
    const added = addedMessages(r);
    if (conv && r.k === conv.length) conv.push(...added);
    else conv = [...(conv ?? []).slice(0, r.k), ...added];
    if (r.s?.start === start) restore = { state: r.s, request: r.q, conv, len: conv.length, used: used.length };
    if (r.q <= upTo) at = { seq: r.q, conv, len: conv.length };
    last = { seq: r.q, conv, len: conv.length };
  }
  const view = (v: { conv: unknown[]; len: number }) => (v.conv.length === v.len ? v.conv : v.conv.slice(0, v.len));
  return {
    ...(restore ? { restore: { state: restore.state, request: restore.request, messages: view(restore).slice(), used: used.slice(0, restore.used) } } : {}),
    ...(at ? { at: { seq: at.seq, messages: view(at).slice() } } : {}),
    ...(last ? { last: { seq: last.seq, messages: view(last), used } } : {}),
  };
}
