import type { Bus } from '../bus/mod.js';
import { envelopeIdFor, parseEnvelope } from '../envelope/mod.js';
import type { Envelope, EnvelopeDraft } from '../envelope/mod.js';
import type { CheckpointWrite, RunPatch, Store } from '../store/mod.js';

/**
 * The write path of one run: gives each new envelope the next gapless seq, commits the batch (with
 * an optional run patch and checkpoint) in one store transaction, and only after that commit
 * publishes the envelopes on the bus: the event log is the outbox.
 *
 * Envelope ids derive from their dedupe keys, so an actor re-run after a crash emits ids the log
 * already holds. Those are not written again (no duplicate, no gap): the stored envelope is
 * published instead, which re-delivers what the crash interrupted. `known` holds the envelopes
 * loaded at recovery; ids written by this process are remembered too.
 */
export class RunJournal {
  private nextSeq: number;
  private tail: Promise<unknown> = Promise.resolve();
  /** Envelopes of the log loaded at recovery, by id. */
  private readonly known = new Map<string, Envelope>();
  /** Ids this process wrote (ids only: payloads are not kept in memory). */
  private readonly written = new Set<string>();
  private closed = false;
  private sealed = false;
  /** Called after every commit (fault injection in crash tests; metrics later). */
  static afterCommit: ((committed: number) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    readonly runId: string,
    lastSeq: number,
    known: Iterable<Envelope> = [],
  ) {
    this.nextSeq = lastSeq + 1;
    for (const e of known) this.known.set(e.id, e);
  }

  idOf(dedupeKey: string): string {
    return envelopeIdFor(this.runId, dedupeKey);
  }

  /** An envelope already in the log under this dedupe key (recorded before a crash, or by this process). */
  recorded(dedupeKey: string): Envelope | undefined {
    return this.known.get(this.idOf(dedupeKey));
  }

  /**
   * Fence the journal: once this node stops hosting the run (it ended, the node shuts down or lost
   * the lease), an actor still unwinding can write nothing more, so it can never race the node
   * that takes the run over.
   */
  close(): void {
    this.closed = true;
  }

  append(drafts: EnvelopeDraft[], extra: { patch?: RunPatch; checkpoint?: CheckpointWrite } = {}): Promise<Envelope[]> {
    const run = async (): Promise<Envelope[]> => {
      if (this.closed) throw new Error(`the journal of run ${this.runId} is closed: this node no longer hosts it`);
      if (this.sealed) throw new Error(`run ${this.runId} has ended: its log takes no more events`);
      const time = new Date().toISOString();
      const out: Envelope[] = [];
      const fresh: Envelope[] = [];
      for (const { dedupeKey, ...d } of drafts) {
        const id = this.idOf(dedupeKey);
        const seen = this.known.get(id);
        if (seen) {
          out.push(seen);
          continue;
        }
        if (this.written.has(id)) continue; // emitted twice by this process: once is enough
        // Validated before it is stored: the log only ever holds envelopes the bus would accept.
        const env = parseEnvelope({ ...d, id, seq: this.nextSeq + fresh.length, time: d.time ?? time });
        fresh.push(env);
        out.push(env);
      }
      if (fresh.length || extra.patch || extra.checkpoint) {
        await this.store.commit({ runId: this.runId, events: fresh, ...extra });
      }
      this.nextSeq += fresh.length;
      for (const e of fresh) this.written.add(e.id);
      // The run's last word: whatever an unwinding actor still tries to write is refused.
      if (fresh.some((e) => e.type === 'run.finished' || e.type === 'run.parked')) this.sealed = true;
      if (fresh.length) RunJournal.afterCommit?.(fresh.length);
      for (const e of out) await this.bus.publish(e);
      return out;
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Wait until every append so far has committed and been published. */
  async flush(): Promise<void> {
    await this.tail;
  }

}
