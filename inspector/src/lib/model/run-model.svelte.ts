import { getJson } from '../api/http';
import { followRun } from '../api/stream';
import type { RunFollower, StreamState } from '../api/stream';
import type { CheckpointSummary, Envelope, GraphView, RunStatus, RunView } from '../api/types';
import { baseFromCheckpoint, foldUpTo, RunFold } from './fold';
import type { FoldBase } from './fold';
import { Lanes } from './lanes';

/** A point of the run, as the views draw it: the fold of its first `n` envelopes. */
export interface RunPoint {
  fold: RunFold;
  /** How many envelopes are folded (the position of the step-through). */
  n: number;
  /** True when this is the latest point and the run goes on. */
  live: boolean;
}

/**
 * Everything the run page shows, fed by the run's stream. Envelopes are kept in a plain array
 * (not a deep `$state`: a run may have tens of thousands) with a reactive count, folded
 * incrementally as they arrive; stepping through folds the first n again (a few ms for 10,000).
 */
export class RunModel {
  run = $state<RunView | null>(null);
  graph = $state<GraphView | null>(null);
  checkpoints = $state<CheckpointSummary[]>([]);
  error = $state<string | null>(null);
  stream = $state<StreamState>('connecting');
  /** The run's final status once its stream said so. */
  ended = $state<RunStatus | null>(null);
  /** Envelopes received so far (reactive through `count`). */
  readonly events: Envelope[] = [];
  count = $state(0);
  /** Bumped when the lanes change (a new actor appeared). */
  lanesVersion = $state(0);
  lanes: Lanes = new Lanes([]);
  /** Step-through position (envelopes folded); null follows the latest. */
  cursor = $state<number | null>(null);
  /** The envelope shown in the detail panel (index into `events`). */
  selected = $state<number | null>(null);
  /** Answers being written right now, by call key (from delta frames; gone once the call's llm.response arrives). */
  writing = $state<Record<string, { actor: string; text: string }>>({});

  private live = new RunFold([]);
  private liveVersion = $state(0);
  private follower: RunFollower | undefined;
  private checkpointTimer: ReturnType<typeof setTimeout> | undefined;
  private nodeIds: string[] = [];
  private base: FoldBase = {};

  readonly position = $derived(this.cursor === null ? this.count : Math.min(this.cursor, this.count));
  readonly point: RunPoint = $derived.by(() => {
    void this.liveVersion;
    const n = this.position;
    if (n >= this.count) return { fold: this.live, n: this.count, live: this.ended === null };
    return { fold: foldUpTo(this.events, n, this.nodeIds, this.base), n, live: false };
  });

  constructor(readonly runId: string) {}

  async load(): Promise<void> {
    try {
      const run = await getJson<RunView>(`/runs/${encodeURIComponent(this.runId)}`);
      const graph = await getJson<GraphView>(`/graphs/${encodeURIComponent(run.graph)}`);
      this.nodeIds = graph.nodes.map((n) => n.id);
      // A replay starts restored from a checkpoint: its log holds only what came after.
      if (run.replay && run.replay.fromStep > 0) {
        const cp = await getJson<{ state: unknown }>(`/runs/${encodeURIComponent(this.runId)}/checkpoints/${run.replay.fromStep}`);
        this.base = baseFromCheckpoint(cp.state);
      }
      this.lanes = new Lanes(this.nodeIds);
      this.live = new RunFold(this.nodeIds, this.base);
      this.run = run;
      this.graph = graph;
      void this.loadCheckpoints();
      this.follower = followRun(this.runId, 0, {
        envelopes: (batch) => this.append(batch),
        end: (status) => {
          this.ended = status;
          void this.refresh();
        },
        state: (s) => (this.stream = s),
        delta: (d) => {
          const prev = this.writing[d.key];
          // A retried call writes its answer again under a higher attempt: start over.
          const text = d.index === 0 || !prev ? d.text : prev.text + d.text;
          this.writing = { ...this.writing, [d.key]: { actor: d.actor, text } };
        },
      });
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  close(): void {
    this.follower?.close();
    clearTimeout(this.checkpointTimer);
  }

  private append(batch: Envelope[]): void {
    let stepped = false;
    let answered = false;
    for (const e of batch) {
      this.events.push(e);
      this.live.apply(e);
      if ((e.type === 'llm.response' || e.type === 'llm.failed') && (e.payload as { key?: string }).key! in this.writing) answered = true;
      if (/^(node\.(completed|failed|skipped)|run\.|loop\.|branch\.completed)/.test(e.type)) stepped = true;
    }
    if (answered) {
      const keys = new Set(batch.filter((e) => e.type === 'llm.response' || e.type === 'llm.failed').map((e) => (e.payload as { key: string }).key));
      this.writing = Object.fromEntries(Object.entries(this.writing).filter(([k]) => !keys.has(k)));
    }
    if (this.lanes.add(batch)) this.lanesVersion += 1;
    this.count = this.events.length;
    this.liveVersion += 1;
    // Supervisor steps write checkpoints: refresh the list now and then while the run goes.
    if (stepped && !this.checkpointTimer) {
      this.checkpointTimer = setTimeout(() => {
        this.checkpointTimer = undefined;
        void this.loadCheckpoints();
      }, 500);
    }
  }

  private async refresh(): Promise<void> {
    try {
      this.run = await getJson<RunView>(`/runs/${encodeURIComponent(this.runId)}`);
      await this.loadCheckpoints();
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  async loadCheckpoints(): Promise<void> {
    const r = await getJson<{ checkpoints: CheckpointSummary[] }>(`/runs/${encodeURIComponent(this.runId)}/checkpoints`);
    this.checkpoints = r.checkpoints;
  }

  /** Move the step-through to `n` envelopes (clamped); at the end it follows the run again. */
  seek(n: number): void {
    const c = Math.max(0, Math.min(this.count, Math.round(n)));
    this.cursor = c >= this.count && this.ended === null ? null : c;
    this.selected = c > 0 ? c - 1 : null;
  }

  step(delta: number): void {
    this.seek(this.position + delta);
  }
}
