import { isEnvelopeType, TERMINAL_STATUSES, unhandledEnvelope } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import type { Client } from './client.js';

const tty = process.stdout.isTTY;
const c = (code: number, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

/** A payload read field by field, as far as its fields go: a watch shows any writer's log, an old one's shapes too. */
const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null;

/** A value as JSON, `undefined` included (JSON.stringify gives no string for it). */
const json = (v: unknown): string => JSON.stringify(v) ?? 'undefined';

/**
 * One line of live progress for an envelope, or nothing for the envelopes a person need not see.
 * The switch covers every envelope type (a type added to PAYLOADS does not compile until it is
 * shown here or listed as quiet); a type this code does not know (a newer writer's) is not shown.
 */
export function progressLine(e: Envelope, t0: number): string | undefined {
  const type = e.type;
  if (!isEnvelopeType(type)) return undefined;
  const p = isRecord(e.payload) ? e.payload : {};
  const at = c(90, `+${((Date.parse(e.time) - t0) / 1000).toFixed(2)}s`.padStart(8));
  const node = pad(String(p.node ?? ''), 12);
  switch (type) {
    case 'run.started':
      return `${at} ${c(36, '●')} run started: ${p.graph} (version ${p.version})`;
    case 'node.start':
      return `${at} ${c(33, '▶')} ${node} started${Number(p.iteration) > 1 ? ` (iteration ${p.iteration})` : ''}${Number(p.attempt) > 1 ? ` (attempt ${p.attempt})` : ''}`;
    case 'branch.start':
      return `${at} ${c(33, '  ↳')} ${node} branch ${p.branch}/${p.of} started`;
    case 'branch.completed':
      return `${at} ${c(32, '  ✔')} ${node} branch ${p.branch} done`;
    case 'tool.call':
      return `${at} ${c(35, '  ⚙')} ${pad(String(e.from.split('/').slice(1).join('/')), 12)} ${p.name}(${json(p.args).slice(0, 80)})`;
    case 'node.completed': {
      const u = p.usage as { totalTokens?: number; toolCalls?: number } | undefined;
      return `${at} ${c(32, '✔')} ${node} succeeded  ${u?.totalTokens ?? 0} tokens${u?.toolCalls ? `, ${u.toolCalls} tool calls` : ''}`;
    }
    case 'node.skipped':
      return `${at} ${c(90, '⤳')} ${node} skipped: ${p.reason}`;
    case 'node.failed':
    case 'branch.failed':
      return `${at} ${c(31, '✖')} ${node} ${type === 'branch.failed' ? `branch ${p.branch} ` : ''}failed: ${(p.error as { code?: string; message?: string })?.code} ${(p.error as { message?: string })?.message}`;
    case 'node.retry_scheduled':
    case 'branch.retry_scheduled':
      return `${at} ${c(33, '↻')} ${node} retry ${p.attempt} in ${p.delayMs} ms`;
    case 'loop.iterated':
      return `${at} ${c(36, '↺')} loop ${p.from} -> ${p.to} (iteration ${p.iteration})`;
    case 'wait.opened':
    case 'wait.registered':
      return `${at} ${c(33, '⏸')} ${node} waits for a person: ${p.prompt} (wait ${p.id})`;
    case 'wait.resolved': {
      const o: Readonly<Record<string, unknown>> = isRecord(p.outcome) ? p.outcome : {};
      const what = o.kind === 'timeout' ? `timed out (${String(o.action)})` : `answered ${json(o.payload).slice(0, 80)}`;
      return `${at} ${c(36, '▶')} ${node} ${what}${p.approved === false ? ' — rejected' : ''}`;
    }
    case 'run.waiting':
      return `${at} ${c(33, '⏸')} run waiting for a person (checkpointed; no process holds it)`;
    case 'run.resumed':
      return `${at} ${c(36, '▶')} run resumed after ${((p.pausedMs as number) / 1000).toFixed(1)}s${p.wallClockPaused ? ' (wall clock paused meanwhile)' : ''}`;
    case 'run.finished': {
      const ok = p.status === 'succeeded';
      // An old or odd `run.finished` without usage is shown too (it threw here before).
      const u: Readonly<Record<string, unknown>> = isRecord(p.usage) ? p.usage : {};
      return `${at} ${c(ok ? 32 : 31, ok ? '●' : '✖')} run ${p.status}: ${u.totalTokens} tokens, ${u.toolCalls} tool calls${p.error ? ` — ${(p.error as { code: string; message: string }).code}: ${(p.error as { message: string }).message}` : ''}`;
    }
    // Quiet: the model's and the budget's traffic, replays' and tasks' bookkeeping.
    case 'run.parked':
    case 'run.migrated':
    case 'run.replayed':
    case 'replay.diverged':
    case 'task.started':
    case 'task.completed':
    case 'task.failed':
    case 'llm.request':
    case 'llm.response':
    case 'llm.failed':
    case 'llm.throttled':
    case 'budget.request':
    case 'budget.granted':
    case 'budget.refused':
    case 'budget.waiting':
    case 'budget.settle':
    case 'budget.release':
    case 'budget.held':
    case 'budget.escalated':
    case 'budget.raised':
    case 'budget.exceeded':
    case 'effect.reconciled':
    case 'effect.unknown_outcome':
    case 'tool.result':
      return undefined;
    default:
      return unhandledEnvelope(type);
  }
}

/** A run as the watch sees it between reads. */
type Seen = Awaited<ReturnType<Client['getRun']>>;

/**
 * Follow a run's event log until it ends or sleeps waiting for a person, printing progress; returns
 * its status then. `throughWaits`: a run parked waiting for a person is followed on (someone may
 * answer it elsewhere), and `onParked` hears of each such wait once. `stop`: checked between
 * reads; once true, returns the run's status as it is.
 */
export async function watchRun(
  client: Client,
  id: string,
  write: (s: string) => void,
  o: { pollMs?: number; stop?: () => boolean; throughWaits?: boolean; onParked?: (run: Seen) => void } = {},
): Promise<string> {
  const pollMs = o.pollMs ?? 150;
  let after = 0;
  let t0: number | undefined;
  let parkedAt = -1;
  for (;;) {
    if (o.stop?.()) return (await client.getRun(id)).status;
    const events = await client.events(id, after);
    for (const e of events) {
      t0 ??= Date.parse(e.time);
      after = e.seq;
      const line = progressLine(e, t0);
      if (line) write(line);
    }
    if (events.length === 0) {
      const run = await client.getRun(id);
      const parked = run.status === 'waiting' && run.owner === null;
      if ((TERMINAL_STATUSES.has(run.status) || (parked && !o.throughWaits)) && run.lastSeq <= after) return run.status;
      if (parked && run.lastSeq <= after && parkedAt !== after) {
        parkedAt = after;
        o.onParked?.(run);
      }
      // Nobody is expected to answer a parked run within milliseconds.
      await new Promise((r) => setTimeout(r, parked ? Math.max(pollMs, 500) : pollMs));
    }
  }
}
