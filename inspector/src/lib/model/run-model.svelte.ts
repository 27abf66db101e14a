import { getJson } from '../api/http';
import { followRun } from '../api/stream';
import type { RunFollower, StreamState } from '../api/stream';
import { fieldsOf } from '../api/types';
import type { CheckpointSummary, Envelope, GraphView, RunStatus, RunView, WaitInfo } from '../api/types';
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

  /**
   * What the run waits for a person to answer now (whatever the step-through shows): the waits the
   * log opened and did not resolve, and those of the run's view the log has not resolved (a replay
   * restored from a checkpoint with a wait open). Oldest first.
   */
  readonly openWaits: WaitInfo[] = $derived.by(() => {
    void this.liveVersion;
    const byId = new Map<string, WaitInfo>(Object.entries(this.live.waits));
    for (const w of this.run?.waits ?? []) if (!byId.has(w.id) && !this.live.resolved.has(w.id)) byId.set(w.id, w);
    return [...byId.values()].sort((a, b) => a.since.localeCompare(b.since));
  });

  private live = new RunFold([]);
  private liveVersion = $state(0);
  private follower: RunFollower | undefined;
  /** While the run sleeps waiting for a person: looks at it now and then to follow it again once it wakes. */
  private watchTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
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
      this.follow();
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  /** Follow the run's stream from the last envelope received. */
  private follow(): void {
    this.follower?.close();
    const after = this.events.at(-1)?.seq ?? 0;
    this.follower = followRun(this.runId, after, {
      envelopes: (batch) => this.append(batch),
      end: (status) => {
        this.ended = status;
        void this.refresh();
        // A run waiting for a person is not over: its stream ends while it sleeps; follow it again once it wakes.
        if (status === 'waiting') this.watch();
      },
      state: (s) => (this.stream = s),
      delta: (d) => {
        const prev = this.writing[d.key];
        // A retried call writes its answer again under a higher attempt: start over.
        const text = d.index === 0 || !prev ? d.text : prev.text + d.text;
        this.writing = { ...this.writing, [d.key]: { actor: d.actor, text } };
      },
    });
  }

  /**
   * The run was answered (or may have been): follow it again now. Its stream ends at once if it
   * still sleeps (the answer wakes it on whichever node takes it), and the watch goes on.
   */
  resume(): void {
    if (this.closed || this.ended !== 'waiting') return;
    clearTimeout(this.watchTimer);
    this.watchTimer = undefined;
    this.ended = null;
    // The step-through was at the end: follow the run live again.
    if (this.cursor !== null && this.cursor >= this.count) this.cursor = null;
    this.follow();
  }

  /** Look at a sleeping run every 2 s (someone may answer elsewhere, or a wait time out); follow it again once it moved. */
  private watch(): void {
    clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(async () => {
      this.watchTimer = undefined;
      if (this.closed || this.ended !== 'waiting') return;
      try {
        const run = await getJson<RunView>(`/runs/${encodeURIComponent(this.runId)}`);
        if (run.status !== 'waiting' || run.lastSeq > (this.events.at(-1)?.seq ?? 0)) return this.resume();
        this.run = run;
      } catch {
        /* the gateway is away: look again later */
      }
      this.watch();
    }, 2000);
  }

  close(): void {
    this.closed = true;
    this.follower?.close();
    clearTimeout(this.checkpointTimer);
    clearTimeout(this.watchTimer);
  }

  private append(batch: Envelope[]): void {
    let stepped = false;
    let answered = false;
    for (const e of batch) {
      this.events.push(e);
      this.live.apply(e);
      if ((e.type === 'llm.response' || e.type === 'llm.failed') && String(fieldsOf(e.payload).key) in this.writing) answered = true;
      if (/^(node\.(completed|failed|skipped)|run\.|loop\.|branch\.completed)/.test(e.type)) stepped = true;
    }
    if (answered) {
      const keys = new Set(batch.filter((e) => e.type === 'llm.response' || e.type === 'llm.failed').map((e) => String(fieldsOf(e.payload).key)));
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
