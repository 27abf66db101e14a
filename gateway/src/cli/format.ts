import type { Budget } from '@ao/graphs';
import type { GraphDetailViewT, GraphViewT, RunViewT } from '../http/views.js';
import type { RunSummaryT } from './client.js';

/**
 * What the CLI prints for people: plain lines (no colour, so they survive pipes and tests), pure
 * functions of the API's views and the current time.
 */

const n = (x: number) => x.toLocaleString('en-US');

/** `0.05s`, `12.3s`, `4m 05s`, `2h 10m`. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago` (a clock a little behind the server's reads as just now). */
export function ago(iso: string, now: number): string {
  const s = Math.floor((now - Date.parse(iso)) / 1000);
  if (s < 1) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** Rows under a header, each column as wide as its widest cell; `right` columns are numbers. */
export function table(header: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** `ao runs`: a header row, then one run a line with its age. */
export function runsTable(runs: RunSummaryT[], now: number): string[] {
  if (!runs.length) return ['no runs'];
  const rows = runs.map((r) => [
    r.id,
    r.graph,
    r.status,
    n(r.usage.totalTokens),
    r.startedAt ? duration(Date.parse(r.finishedAt ?? new Date(now).toISOString()) - Date.parse(r.startedAt)) : '-',
    ago(r.createdAt, now),
  ]);
  return table(['ID', 'GRAPH', 'STATUS', 'TOKENS', 'TOOK', 'CREATED'], rows, new Set([3, 4]));
}

const budgetText = (b: GraphViewT['budget']): string => {
  const parts: string[] = [];
  if (b.tokens !== undefined) parts.push(`${n(b.tokens)} tokens`);
  if (b.tools !== undefined) parts.push(`${n(b.tools)} tool calls`);
  if (b.usd !== undefined) parts.push(`$${b.usd}`);
  if (b.wallClockSec !== undefined) parts.push(`${n(b.wallClockSec)} s wall clock`);
  for (const [tool, cap] of Object.entries(b.perTool ?? {})) parts.push(`${tool} ×${cap}`);
  return parts.length ? parts.join(', ') : 'no limits';
};

/**
 * A graph's structure as one line per edge (`a -> b`, `a -?-> b` when conditional, `(loops back)`
 * for a loop's back edge), so branches and joins read as they are: the last edge into a join says
 * which nodes it waits for. A node without any edge gets a line of its own.
 */
export function edgeLines(g: GraphViewT): string[] {
  const width = Math.max(0, ...g.edges.map((e) => e.from.length));
  const into = (to: string) => g.edges.filter((e) => e.to === to && !e.back);
  const note = (e: GraphViewT['edges'][number], i: number) => {
    if (e.back) return '  (loops back)';
    const joined = into(e.to);
    const last = g.edges.findLastIndex((x) => x.to === e.to && !x.back);
    return joined.length > 1 && last === i ? `  (${e.to} joins ${joined.map((x) => x.from).join(', ')})` : '';
  };
  const lines = g.edges.map((e, i) => `${e.from.padEnd(width)} ${e.conditional ? '-?->' : '--->'} ${e.to}${note(e, i)}`);
  const linked = new Set(g.edges.flatMap((e) => [e.from, e.to]));
  for (const node of g.nodes) if (!linked.has(node.id)) lines.push(`${node.id} (no edges)`);
  return lines;
}

/** `ao graphs`: every graph with its version, budget and edges. */
export function graphsList(graphs: GraphViewT[]): string[] {
  const out: string[] = [];
  for (const g of graphs) {
    out.push(`${g.name}  version ${g.version}  ${g.nodes.length} nodes  budget: ${budgetText(g.budget)}${g.hasInputSchema ? '  (typed input)' : ''}`);
    for (const l of edgeLines(g)) out.push(`  ${l}`);
  }
  if (graphs.some((g) => g.edges.some((e) => e.conditional)))
    out.push('', "-?-> is followed only when its condition holds; ao graphs <name> for a graph's nodes and input");
  return out;
}

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  description?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
};

/** `string`, `integer`, `"a" | "b"`, `string[]`, `string | null`, `any`. */
function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(typeOf).join(' | ');
  if (s.type === 'array') return `${s.items ? typeOf(s.items) : 'any'}[]`;
  if (Array.isArray(s.type)) return s.type.join(' | ');
  return s.type ?? (s.properties ? 'object' : 'any');
}

function constraints(s: JsonSchema): string[] {
  const c: string[] = [];
  if (s.format) c.push(`format ${s.format}`);
  if (s.minLength !== undefined) c.push(`min length ${s.minLength}`);
  if (s.maxLength !== undefined) c.push(`max length ${s.maxLength}`);
  if (s.minimum !== undefined) c.push(`>= ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) c.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) c.push(`<= ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) c.push(`< ${s.exclusiveMaximum}`);
  if (s.minItems !== undefined) c.push(`at least ${s.minItems} items`);
  if (s.maxItems !== undefined) c.push(`at most ${s.maxItems} items`);
  if (s.pattern !== undefined) c.push(`matches /${s.pattern}/`);
  if (s.default !== undefined) c.push(`default ${JSON.stringify(s.default)}`);
  return c;
}

/**
 * The fields of an input JSON Schema, one a line (`brief  string, required, min length 1`),
 * nested objects indented under their field.
 */
export function schemaFields(schema: Record<string, unknown> | null, indent = ''): string[] {
  if (!schema) return [`${indent}any JSON value (the graph has no input schema)`];
  const s = schema as JsonSchema;
  if (!s.properties)
    return [
      `${indent}${typeOf(s)}${constraints(s)
        .map((c) => `, ${c}`)
        .join('')}`,
    ];
  const required = new Set(s.required ?? []);
  const names = Object.keys(s.properties);
  const width = Math.max(0, ...names.map((k) => k.length));
  const out: string[] = [];
  for (const k of names) {
    const p = s.properties[k]!;
    const parts = [typeOf(p), required.has(k) ? 'required' : 'optional', ...constraints(p)];
    out.push(`${indent}${k.padEnd(width)}  ${parts.join(', ')}${p.description ? `  — ${p.description}` : ''}`);
    if (p.properties) out.push(...schemaFields(p as Record<string, unknown>, `${indent}  `));
  }
  return out;
}

/** `ao graphs <name>`: nodes, edges, budget and the input's fields, with a command to start a run. */
export function graphDetailLines(g: GraphDetailViewT): string[] {
  const out = [`${g.name}  version ${g.version}`, `  budget: ${budgetText(g.budget)}`, '', 'nodes'];
  const incoming = (id: string) => g.edges.filter((e) => e.to === id && !e.back).length;
  const rows = g.nodes.map((node) => {
    const notes = [
      g.entries.includes(node.id) ? 'entry' : '',
      incoming(node.id) > 1 ? `join of ${incoming(node.id)}` : '',
      node.tools.length ? `tools ${node.tools.join(', ')}` : '',
      node.concurrency !== undefined ? `${node.concurrency} branches` : '',
      node.maxIterations !== undefined ? `at most ${node.maxIterations} iterations` : '',
      node.approval ? 'needs approval' : '',
      node.interrupt ? 'may ask a person' : '',
    ].filter(Boolean);
    return [`  ${node.id}`, node.agent, node.llm, notes.join('; ')];
  });
  out.push(...table(['', '', '', ''], rows).slice(1), '', 'edges');
  out.push(...edgeLines(g).map((l) => `  ${l}`), '', 'input');
  out.push(...schemaFields(g.inputSchema, '  '));
  return out;
}

/**
 * The usage of a run, against its limits where it has them, soft limits beside them:
 * `832 / 8,000 tokens (soft 6,000), 3 LLM calls, 1 / 10 tool calls, 1 / 1 stripe_refund calls`.
 */
function usageText(r: RunViewT): string {
  const limits: Budget = r.budgetUsage?.limits ?? (r.budget as Budget);
  const soft = (k: 'tokens' | 'tools' | 'usd', show: (x: number) => string) => (limits.soft?.[k] !== undefined ? ` (soft ${show(limits.soft[k])})` : '');
  const of = (used: number, limit: number | undefined, what: string) => `${n(used)}${limit !== undefined ? ` / ${n(limit)}` : ''} ${what}`;
  const parts = [
    of(r.usage.totalTokens, limits.tokens, 'tokens') + soft('tokens', n),
    `${n(r.usage.llmCalls)} LLM calls`,
    of(r.usage.toolCalls, limits.tools, 'tool calls') + soft('tools', n),
  ];
  const usd = r.budgetUsage?.used.usd;
  if (usd) parts.push(`$${usd.toFixed(4)}${limits.usd !== undefined ? ` / $${limits.usd}` : ''}${soft('usd', (x) => `$${x}`)}`);
  const perTool = r.budgetUsage?.used.perTool ?? r.usage.perTool;
  for (const [tool, cap] of Object.entries(limits.perTool ?? {})) parts.push(of(perTool[tool] ?? 0, cap, `${tool} calls`));
  return parts.join(', ');
}

/**
 * The time the wall-clock budget has counted, against its limit: `0.52s / 60s, 21.9s asleep for a
 * person not counted`. The run's `took` counts those sleeps; the budget does not.
 */
function clockText(r: RunViewT): string | undefined {
  const limit = (r.budgetUsage?.limits ?? (r.budget as Budget)).wallClockSec;
  const c = r.budgetUsage?.wallClock;
  if (!c || limit === undefined) return undefined;
  const asleep = c.pausedMs > 0 ? `, ${duration(c.pausedMs)} asleep for a person not counted${c.paused ? ' (stopped while it sleeps)' : ''}` : '';
  return `${duration(c.usedMs)} / ${duration(limit * 1000)} of the wall-clock budget${asleep}`;
}

type ToolUse = { name?: unknown; ok?: unknown; args?: unknown; result?: unknown; error?: unknown };
/** A node's answer (`{text, tools?}`) as its text and one line per tool call; undefined for any other value. */
function answerOf(v: unknown): { text: string; tools: ToolUse[] } | undefined {
  if (typeof v === 'string') return { text: v, tools: [] };
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const { text, tools, ...rest } = v as { text?: unknown; tools?: unknown };
  if (typeof text !== 'string' || Object.keys(rest).length || (tools !== undefined && !Array.isArray(tools))) return undefined;
  return { text, tools: (tools ?? []) as ToolUse[] };
}
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
const indented = (text: string, indent: string) => text.split('\n').map((l) => `${indent}${l}`);
function answerLines(a: { text: string; tools: ToolUse[] }, indent: string): string[] {
  const tools = a.tools.map((t) => {
    const outcome = t.ok === false ? `failed: ${JSON.stringify(t.error ?? t.result) ?? ''}` : `-> ${JSON.stringify(t.result) ?? 'nothing'}`;
    return `${indent}tool ${String(t.name)}(${clip(JSON.stringify(t.args) ?? '', 100)}) ${clip(outcome, 160)}`;
  });
  return [...indented(a.text, indent), ...tools];
}

/**
 * A JSON value for reading: text as text, an object key by key (a node's `{text, tools}` answer as
 * its text and a line per tool call), anything else as indented JSON. `ao show --json` has it all.
 */
export function valueLines(v: unknown, indent: string): string[] {
  const answer = answerOf(v);
  if (answer) return answerLines(answer, indent);
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) {
    return Object.entries(v).flatMap(([k, x]) => {
      const a = answerOf(x);
      if (a && !a.tools.length && !a.text.includes('\n') && a.text.length <= 80) return [`${indent}${k}: ${a.text}`];
      if (a) return [`${indent}${k}:`, ...answerLines(a, `${indent}  `)];
      const json = JSON.stringify(x, null, 2) ?? 'null';
      return json.includes('\n') ? [`${indent}${k}:`, ...indented(json, `${indent}  `)] : [`${indent}${k}: ${json}`];
    });
  }
  return indented(JSON.stringify(v, null, 2) ?? 'null', indent);
}

/**
 * `ao show <id>`: status, graph, times, usage, nodes with their state, waits, error, input and
 * output. `order`: the graph's node ids, to list nodes as the graph declares them.
 */
export function runLines(r: RunViewT, now: number, order: readonly string[] = []): string[] {
  const out = [`run ${r.id}`];
  const field = (k: string, v: string) => out.push(`  ${k.padEnd(9)} ${v}`);
  field('status', r.status);
  field('graph', `${r.graph} (version ${r.graphVersion})`);
  if (r.replay) field('replays', `${r.replay.of} from step ${r.replay.fromStep} (${r.replay.mode}${r.replay.overrides ? ', fork' : ''})`);
  field('created', `${r.createdAt} (${ago(r.createdAt, now)})`);
  if (r.startedAt) {
    const end = r.finishedAt ? Date.parse(r.finishedAt) : now;
    field('took', `${duration(end - Date.parse(r.startedAt))}${r.finishedAt ? `, finished ${r.finishedAt}` : ' so far'}`);
  }
  field('usage', usageText(r));
  const clock = clockText(r);
  if (clock) field('clock', clock);
  if (r.error) field('error', `${r.error.code}: ${r.error.message}${r.error.node ? ` (node ${r.error.node})` : ''}`);
  for (const w of r.waits) field('waits', `${w.node}: ${w.prompt} (${w.kind}, wait ${w.id}, since ${w.since})`);

  const ids = [...order.filter((id) => id in r.nodes), ...Object.keys(r.nodes).filter((id) => !order.includes(id))];
  if (ids.length) {
    out.push('', 'nodes');
    const rows = ids.map((id) => {
      const s = r.nodes[id]!;
      const took = s.startedAt && s.finishedAt ? duration(Date.parse(s.finishedAt) - Date.parse(s.startedAt)) : '';
      const notes = [
        s.iteration > 1 ? `${s.iteration} iterations` : '',
        s.attempt > 1 ? `attempt ${s.attempt}` : '',
        s.error ? `${s.error.code}: ${s.error.message}` : '',
      ].filter(Boolean);
      return [`  ${id}`, s.status, took, notes.join('; ')];
    });
    out.push(...table(['', '', '', ''], rows, new Set([2])).slice(1));
  }
  out.push('', 'input', ...valueLines(r.input ?? null, '  '));
  if (r.output !== undefined && r.output !== null) out.push('', 'output', ...valueLines(r.output, '  '));
  return out;
}
