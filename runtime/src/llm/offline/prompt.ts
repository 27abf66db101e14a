import type { ChatMessage } from '../port.js';

/** What the offline model understands of a conversation written by the agent loop. */
export interface PromptContext {
  readonly instructions: string;
  readonly nodeId: string;
  readonly agentKind: string | undefined;
  /** The run input: parsed JSON when it parses, else the raw text; undefined when absent. */
  readonly input: unknown;
  readonly upstream: ReadonlyArray<{ readonly nodeId: string; readonly text: string }>;
  readonly iteration: number;
  readonly branch: { readonly index: number; readonly of: number } | undefined;
  readonly toolResults: ReadonlyArray<{ readonly name: string; readonly content: string }>;
}

const NODE_RE = /^Node:\s*(\S+)(?:\s*\(([^)]*)\))?\s*$/;
const ITERATION_RE = /^Iteration:\s*(\d+)\s*$/;
const BRANCH_RE = /^Branch:\s*(\d+)\s*of\s*(\d+)\s*$/;
// Only id-like headings start an upstream section, so markdown headings inside an output stay text.
const UPSTREAM_RE = /^##\s+([A-Za-z0-9_.:-]+)\s*$/;

/**
 * Read the prompt format of the agent loop (system = instructions; first user message = node,
 * run input, upstream outputs, iteration and branch lines). Every section is optional.
 */
export function parsePrompt(messages: readonly ChatMessage[]): PromptContext {
  const instructions = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n');
  const firstUser = messages.find((m) => m.role === 'user')?.content ?? '';
  const lines = firstUser.split(/\r?\n/);

  // The iteration and branch lines close the message; peel them off before reading sections,
  // so they never end up inside the last upstream output.
  let iteration = 1;
  let branch: PromptContext['branch'];
  while (lines.length > 0) {
    const last = (lines[lines.length - 1] ?? '').trim();
    const it = ITERATION_RE.exec(last);
    const br = BRANCH_RE.exec(last);
    if (it) iteration = Number(it[1]);
    else if (br) branch = { index: Number(br[1]), of: Number(br[2]) };
    else if (last !== '') break;
    lines.pop();
  }

  let nodeId = 'node';
  let agentKind: string | undefined;
  let section: 'head' | 'input' | 'upstream' = 'head';
  let structured = false;
  const inputLines: string[] = [];
  const upstream: Array<{ nodeId: string; lines: string[] }> = [];
  for (const line of lines) {
    const node = section === 'head' ? NODE_RE.exec(line.trim()) : null;
    if (node) {
      structured = true;
      nodeId = node[1] ?? nodeId;
      agentKind = node[2]?.trim() || undefined;
    } else if (line.trim() === 'Run input:' && section !== 'upstream') {
      section = 'input';
      structured = true;
    } else if (line.trim() === 'Upstream outputs:') {
      section = 'upstream';
      structured = true;
    } else if (section === 'input') inputLines.push(line);
    else if (section === 'upstream') {
      const head = UPSTREAM_RE.exec(line);
      if (head) upstream.push({ nodeId: head[1] ?? '', lines: [] });
      else upstream[upstream.length - 1]?.lines.push(line);
    }
  }

  const toolResults = messages.flatMap((m) => (m.role === 'tool' ? [{ name: m.name, content: m.content }] : []));
  return {
    instructions,
    nodeId,
    agentKind,
    // A free-form user message (not the agent loop's format) is itself the input.
    input: parseInput((structured ? inputLines.join('\n') : lines.join('\n')).trim()),
    upstream: upstream.map((u) => ({ nodeId: u.nodeId, text: u.lines.join('\n').trim() })),
    iteration,
    branch,
    toolResults,
  };
}

function parseInput(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
