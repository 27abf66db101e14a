import { forwardedDraft } from '@ao/runtime';
import type { ActorJournal, AnyDraft, Envelope } from '@ao/runtime';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * An actor's last word (`<its path>/done`: `node.completed`, `branch.failed`, ...) naming the
 * runtime node that ran it (`ranOn`), so a run's log says where each of its steps and branches ran.
 * Other drafts are returned as they are. The determinism check leaves `ranOn` out (`gistOf`).
 */
export function withRanOn(d: AnyDraft, node: string): AnyDraft {
  // A field added to whatever payload the last word has (a `task.completed`'s schema has no
  // `ranOn`: the log keeps it, its typed view drops it): the draft is no longer typed here.
  return d.dedupeKey === `${d.from}/done` && isRecord(d.payload) ? forwardedDraft({ ...d, payload: { ...d.payload, ranOn: node } }) : d;
}

/** A host's journal as its actors see it in a cluster: their last words name this node. */
export function ranOnJournal(j: ActorJournal, node: string): ActorJournal {
  return new Proxy(j, {
    get(target, key) {
      if (key === 'append')
        return (drafts: AnyDraft[], extra?: Parameters<ActorJournal['append']>[1]) =>
          target.append(
            drafts.map((d) => withRanOn(d, node)),
            extra,
          );
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Where a run's steps and branches ran, from their last words: each node in order of first appearance. */
export function ranOnSummary(events: readonly Envelope[]): Array<{ node: string; done: number; firstSeq: number; lastSeq: number }> {
  const out = new Map<string, { node: string; done: number; firstSeq: number; lastSeq: number }>();
  for (const e of events) {
    const node = isRecord(e.payload) && typeof e.payload.ranOn === 'string' ? e.payload.ranOn : undefined;
    if (!node) continue;
    const s = out.get(node);
    if (s) {
      s.done += 1;
      s.lastSeq = Math.max(s.lastSeq, e.seq);
    } else out.set(node, { node, done: 1, firstSeq: e.seq, lastSeq: e.seq });
  }
  return [...out.values()];
}
