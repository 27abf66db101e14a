import type { Bus } from '../bus/mod.js';
import { newEnvelopeId } from '../envelope/mod.js';
import type { Envelope, EnvelopeDraft } from '../envelope/mod.js';
import type { RunPatch, Store } from '../store/mod.js';

/**
 * The write path of one run: gives each envelope the next gapless seq, commits the batch (and an
 * optional run patch) in one store transaction, and only after that commit publishes the
 * envelopes on the bus (a transactional outbox). Appends are serialised, so seq order is commit
 * order; a failed commit consumes no seq.
 */
export class RunJournal {
  private nextSeq: number;
  private tail: Promise<unknown> = Promise.resolve();
  private listeners = new Set<(envs: Envelope[]) => void>();

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    readonly runId: string,
    lastSeq: number,
  ) {
    this.nextSeq = lastSeq + 1;
  }

  append(drafts: EnvelopeDraft[], patch?: RunPatch): Promise<Envelope[]> {
    const run = async (): Promise<Envelope[]> => {
      const time = new Date().toISOString();
      const envs: Envelope[] = drafts.map((d, i) => ({
        ...d,
        id: d.id ?? newEnvelopeId(),
        seq: this.nextSeq + i,
        time: d.time ?? time,
      }));
      await this.store.commit({ runId: this.runId, events: envs, ...(patch ? { patch } : {}) });
      this.nextSeq += envs.length;
      for (const l of this.listeners) l(envs);
      for (const e of envs) await this.bus.publish(e);
      return envs;
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Wait until every append so far has committed and been published. */
  async flush(): Promise<void> {
    await this.tail;
  }

  /** Called synchronously after each commit, before publishing (in-process observers). */
  onCommit(l: (envs: Envelope[]) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
