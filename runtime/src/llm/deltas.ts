import type { LlmPort, LlmRequest } from './port.js';

/**
 * A piece of an LLM answer as it is being written, for live views (the inspector). Deltas are
 * ephemeral: they are never journaled, have no `seq`, and are not part of a run's event log or
 * of replay comparisons. The `llm.response` envelope that follows holds the whole answer and is
 * what counts.
 */
export interface DeltaEvent {
  readonly kind: 'llm.delta';
  readonly runId: string;
  /** The effect key of the call (`actorPath/n`), the same as its `llm.request`/`llm.response`. */
  readonly key: string;
  /** The actor making the call. */
  readonly actor: string;
  /** Counts from 1 per HTTP attempt: a retried call writes its answer again under a higher attempt. */
  readonly attempt: number;
  /** Counts from 0 within the call. */
  readonly index: number;
  readonly text: string;
}

type Handler = (e: DeltaEvent) => void;

/**
 * In-process fan-out of deltas by run (or `'*'` for every run). Costs one map lookup per delta
 * when nobody listens; a throwing listener is dropped from that delta, never from the call.
 *
 * @example
 * ```ts
 * const sub = runtime.deltas.subscribe(runId, (d) => process.stdout.write(d.text));
 * // ... later
 * sub.unsubscribe();
 * ```
 */
export class DeltaFeed {
  private readonly handlers = new Map<string, Set<Handler>>();

  subscribe(runId: string, handler: Handler): { unsubscribe(): void } {
    const set = this.handlers.get(runId) ?? new Set<Handler>();
    set.add(handler);
    this.handlers.set(runId, set);
    return {
      unsubscribe: () => {
        set.delete(handler);
        if (!set.size) this.handlers.delete(runId);
      },
    };
  }

  /** Whether anyone listens to this run: callers skip building deltas otherwise. */
  listening(runId: string): boolean {
    return this.handlers.has(runId) || this.handlers.has('*');
  }

  publish(e: DeltaEvent): void {
    for (const k of [e.runId, '*']) {
      for (const h of this.handlers.get(k) ?? []) {
        try {
          h(e);
        } catch {
          // a live view's failure is not the run's
        }
      }
    }
  }
}

/**
 * The adapter with its deltas published on `feed`, labelled with the call's run, effect key and
 * actor (from the call options). Nothing is built for a run nobody listens to.
 */
export function withDeltas(port: LlmPort, feed: DeltaFeed): LlmPort {
  return {
    provider: port.provider,
    // What the LLM step reads of a port (the profile's output cap, the prompt's count) passes through.
    ...(port.maxOutputTokens !== undefined ? { maxOutputTokens: port.maxOutputTokens } : {}),
    ...(port.countPromptTokens ? { countPromptTokens: (req: LlmRequest) => port.countPromptTokens!(req) } : {}),
    complete(req, signal, options = {}) {
      const call = options.call;
      if (!call) return port.complete(req, signal, options);
      let index = 0;
      return port.complete(req, signal, {
        ...options,
        onDelta: (d) => {
          options.onDelta?.(d);
          if (feed.listening(call.runId))
            feed.publish({ kind: 'llm.delta', runId: call.runId, key: call.key, actor: call.actor, attempt: d.attempt, index: index++, text: d.text });
        },
      });
    },
  };
}
