import { foldTurns, UsageSchema } from '@ao/runtime';
import type { AgentRestore, ConversationAt, Envelope, StoredTurn, Usage } from '@ao/runtime';
import { LedgerStateSchema } from './run-supervisor/checkpoint.js';

/** A budget ledger as a resume point holds it: the checkpoint's form, with the run's usage. */
const PointLedgerSchema = LedgerStateSchema.extend({ usage: UsageSchema });

/** The budget ledger as of a resume point (later than the run's checkpoint). */
export interface PointLedger {
  seq: number;
  state: typeof PointLedgerSchema._output;
}

/**
 * What a resume reads and restores beyond the run's checkpoint (issue 22): an agent loop among
 * the live children that left a resume point in its turn records (see @ao/runtime `turns.ts`)
 * goes on from there. The budget ledger is the latest resume point's when it is later than the
 * checkpoint's; the log is read after the earliest of that ledger's seq and, for each live child,
 * its resume point's seq or (without one) its start, instead of from every child's start.
 */
export interface ResumePlan {
  /** The log after this seq is what the actors may emit again. */
  after: number;
  /** Restored agents by actor path. */
  agents: Map<string, AgentRestore>;
  ledger?: PointLedger;
  /** Each restored agent's conversation as of its last request at or before `after` (`run#actor`): requests read after it are rebuilt on it. */
  bases: Map<string, readonly unknown[]>;
  /** Each restored agent's last request: what its next request continues. */
  last: Map<string, ConversationAt>;
}

/**
 * The resume plan of one run: `cpSeq` its checkpoint's seq (0 without), `starts` the start messages
 * of the live children the checkpoint names, `records` the run's turn records since the earliest of
 * them (none: every child runs again from its start, as a replay does).
 */
export function resumePlan(runId: string, cpSeq: number, starts: readonly Envelope[], records: readonly StoredTurn[]): ResumePlan {
  const agents = new Map<string, AgentRestore>();
  let ledger: PointLedger | undefined;
  for (const start of starts) {
    const { restore } = foldTurns(records, start.to, start.id, 0);
    if (!restore) continue;
    const l = PointLedgerSchema.safeParse(restore.state.ledger);
    // A point whose counters are not what this code writes is passed over: the child runs from its start.
    if (!l.success || !UsageSchema.safeParse(restore.state.usage).success) continue;
    agents.set(start.to, { ...restore, state: { ...restore.state, usage: restore.state.usage as Usage } });
    if (restore.state.seq > (ledger?.seq ?? cpSeq)) ledger = { seq: restore.state.seq, state: l.data };
  }
  // What may be emitted again: each live child's envelopes after its point (or start), and what
  // the ledger's fold needs (after the checkpoint's seq, or the latest point's). The supervisor
  // emits nothing again: its steps are in the checkpoint.
  const after = Math.min(ledger?.seq ?? cpSeq, ...starts.map((s) => agents.get(s.to)?.state.seq ?? s.seq - 1));
  const bases = new Map<string, readonly unknown[]>();
  const last = new Map<string, ConversationAt>();
  for (const start of starts) {
    if (!agents.has(start.to)) continue;
    // Every request of a restored agent's execution has its record: the fold is its whole conversation.
    const f = foldTurns(records, start.to, start.id, after);
    if (f.at) bases.set(`${runId}#${start.to}`, f.at.messages);
    if (f.last) last.set(start.to, f.last);
  }
  return { after, agents, ...(ledger ? { ledger } : {}), bases, last };
}
