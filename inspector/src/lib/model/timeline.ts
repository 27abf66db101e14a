import type { Envelope } from '../api/types';
import { executions } from './executions';
import type { ExecutionView } from './executions';
import { actorKey } from './lanes';

export interface TimelineBar {
  kind: 'node' | 'llm' | 'tool';
  /** Offsets from the run's first envelope, in ms. */
  start: number;
  end: number;
  /** Still going at the last envelope. */
  open: boolean;
  label: string;
  node: string;
  status: string;
  tokens: number;
  usd: number;
}

export interface TimelineRow {
  /** The actor, without iteration and attempt (`supervisor/draft`). */
  actor: string;
  label: string;
  node: string;
  bars: TimelineBar[];
  tokens: number;
  usd: number;
}

export interface Timeline {
  /** Length of the run so far, in ms. */
  span: number;
  rows: TimelineRow[];
  /** When the run slept waiting for a person. */
  waits: Array<{ start: number; end: number }>;
}

const at = (iso: string, t0: number) => Date.parse(iso) - t0;

/**
 * The run as time: one row per actor (a node, or one branch of a swarm node), a bar per execution
 * of it and, inside, a bar per LLM or tool call. Rows keep the order in which actors started.
 */
export function timeline(events: readonly Envelope[], xs: readonly ExecutionView[] = executions(events)): Timeline {
  if (!events.length) return { span: 0, rows: [], waits: [] };
  const t0 = Date.parse(events[0]!.time);
  const span = Math.max(1, at(events.at(-1)!.time, t0));
  const rows = new Map<string, TimelineRow>();
  for (const x of xs) {
    const key = actorKey(x.actor);
    let row = rows.get(key);
    if (!row) {
      const label = x.branch !== undefined ? `${x.node} · branch-${x.branch}` : x.node;
      rows.set(key, (row = { actor: key, label, node: x.node, bars: [], tokens: 0, usd: 0 }));
    }
    const end = x.end ? at(x.end, t0) : span;
    const where = x.branch !== undefined ? `branch ${x.branch}` : `iteration ${x.iteration}, attempt ${x.attempt}`;
    row.bars.push({
      kind: 'node',
      start: at(x.start, t0),
      end,
      open: !x.end,
      label: `${x.node} (${where})`,
      node: x.node,
      status: x.status,
      tokens: x.tokens,
      usd: x.usd,
    });
    row.tokens += x.tokens;
    row.usd += x.usd;
    for (const c of x.calls) {
      row.bars.push({
        kind: c.kind,
        start: at(c.start, t0),
        end: c.end ? at(c.end, t0) : span,
        open: !c.end,
        label: c.kind === 'llm' ? `LLM ${c.name}` : `tool ${c.name}`,
        node: x.node,
        status: c.error || c.ok === false ? 'failed' : c.end ? 'succeeded' : 'running',
        tokens: c.tokens,
        usd: c.usd,
      });
    }
  }
  const waits: Timeline['waits'] = [];
  let since: number | null = null;
  for (const e of events) {
    if (e.type === 'run.waiting' && since === null) since = at(e.time, t0);
    else if ((e.type === 'run.resumed' || e.type === 'run.finished') && since !== null) {
      waits.push({ start: since, end: at(e.time, t0) });
      since = null;
    }
  }
  if (since !== null) waits.push({ start: since, end: span });
  return { span, rows: [...rows.values()], waits };
}
