import { AoError, canonicalJson } from '@ao/graphs';
import { isoNow, putRefs, systemClock, TERMINAL_STATUSES } from '@ao/runtime';
import type {
  ApiKeyRecord,
  CheckpointRecord,
  CheckpointSummary,
  CommitBatch,
  Envelope,
  ImportedRun,
  ListRunsQuery,
  NewRun,
  NodeIdHolder,
  RunRecord,
  RunStatus,
  SecretRecord,
  SignalRecord,
  Store,
} from '@ao/runtime';

/** A copy through JSON, as a store's round trip makes it (undefined fields dropped, no shared objects). */
const copy = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

interface Held {
  run: RunRecord;
  events: Envelope[];
  ids: Set<string>;
  checkpoints: CheckpointRecord[];
}

/**
 * A store in memory for verifying recordings (./verifier.ts): what one passive engine needs to host
 * recorded replays of runs copied into it, and nothing it does not (no signals, keys, node ids or
 * claims: a verification answers nobody and takes over nothing). Runs are dropped once verified,
 * so memory stays flat over any number of runs. A PGlite store does the same work at a few
 * milliseconds a commit; this one takes microseconds, and a replay commits at every step.
 */
export class ScratchStore implements Store {
  readonly kind = 'pglite' as const;
  private readonly runs = new Map<string, Held>();
  private n = 0;

  private held(id: string): Held {
    const h = this.runs.get(id);
    if (!h) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id} in the scratch store`);
    return h;
  }

  /** Forget runs (a verified original and its replay). */
  forget(ids: readonly string[]): void {
    for (const id of ids) this.runs.delete(id);
  }

  get size(): number {
    return this.runs.size;
  }

  async createRun({ leaseMs, tenant, requestHash: _h, idempotencyKey, ...run }: NewRun): Promise<RunRecord> {
    const now = isoNow();
    if (this.runs.has(run.id)) throw new AoError('AO_INTERNAL', `run ${run.id} exists in the scratch store`);
    const record: RunRecord = {
      ...copy(run),
      status: 'pending',
      output: null,
      error: null,
      usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0, llmCalls: 0, toolCalls: 0, perTool: {} },
      leaseExpiresAt: run.owner ? new Date(systemClock.now() + leaseMs).toISOString() : null,
      cancelRequested: false,
      lastSeq: 0,
      replay: run.replay ? copy(run.replay) : null,
      tenant: tenant ?? (run.replay ? this.runs.get(run.replay.of)?.run.tenant : undefined) ?? 'default',
      idempotencyKey: idempotencyKey ?? null,
      waits: [],
      wakeAt: null,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      finishedAt: null,
    };
    this.runs.set(run.id, { run: record, events: [], ids: new Set(), checkpoints: [] });
    this.n += 1;
    return copy(record);
  }

  async importRun({ run, events, checkpoints }: ImportedRun): Promise<RunRecord> {
    if (this.runs.has(run.id)) throw new AoError('AO_RUN_EXISTS', `run ${run.id} exists in the scratch store`, { field: 'run.id' });
    const sorted = copy([...events].sort((a, b) => a.seq - b.seq));
    const record: RunRecord = {
      ...copy(run),
      owner: null,
      leaseExpiresAt: null,
      cancelRequested: false,
      lastSeq: sorted.at(-1)?.seq ?? 0,
      idempotencyKey: null,
      waits: [],
      wakeAt: null,
      updatedAt: isoNow(),
    };
    const cps = checkpoints.map((c) => ({ ...copy(c), runId: run.id, sizeBytes: canonicalJson(c.state).length })).sort((a, b) => a.step - b.step);
    this.runs.set(run.id, { run: record, events: sorted, ids: new Set(sorted.map((e) => e.id)), checkpoints: cps });
    this.n += 1;
    return copy(record);
  }

  async commit(batch: CommitBatch): Promise<void> {
    const h = this.held(batch.runId);
    // Fenced as the real stores are: nothing is written for a node that no longer holds the run.
    if (batch.owner !== undefined && h.run.owner !== batch.owner)
      throw new AoError('AO_LEASE_LOST', `node ${batch.owner} no longer holds run ${batch.runId}`, { details: { runId: batch.runId } });
    for (const e of batch.events) {
      if (h.ids.has(e.id)) continue;
      h.ids.add(e.id);
      h.events.push(copy(e));
    }
    h.events.sort((a, b) => a.seq - b.seq);
    const lastSeq = Math.max(h.run.lastSeq, ...batch.events.map((e) => e.seq));
    const { releaseLease, consumeSignals: _c, ...patch } = batch.patch ?? {};
    h.run = { ...h.run, ...copy(patch), lastSeq, updatedAt: isoNow(), ...(releaseLease ? { owner: null, leaseExpiresAt: null } : {}) };
    for (const c of [...(batch.checkpoint ? [batch.checkpoint] : []), ...(batch.checkpoints ?? [])]) {
      const state = copy(c.state);
      h.checkpoints = h.checkpoints.filter((x) => x.step !== c.step);
      h.checkpoints.push({
        runId: batch.runId,
        step: c.step,
        seq: c.seq ?? lastSeq,
        node: c.node,
        graphVersion: c.graphVersion,
        state,
        sizeBytes: canonicalJson(state).length,
        createdAt: isoNow(),
      });
      h.checkpoints.sort((a, b) => a.step - b.step);
    }
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const h = this.runs.get(id);
    return h ? copy(h.run) : undefined;
  }

  async listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }> {
    const all = [...this.runs.values()]
      .map((h) => h.run)
      .filter((r) => (!q.status || r.status === q.status) && (!q.graph || r.graph === q.graph) && (!q.tenant || r.tenant === q.tenant));
    return { runs: copy(all.reverse().slice(0, q.limit)), next: null };
  }

  async countRuns(tenant: string, statuses: readonly RunStatus[]): Promise<number> {
    return [...this.runs.values()].filter((h) => h.run.tenant === tenant && statuses.includes(h.run.status)).length;
  }

  async findRunByIdempotencyKey(): Promise<undefined> {
    return undefined;
  }

  async listEvents(runId: string, q: { after?: number; upTo?: number; limit: number }): Promise<Envelope[]> {
    const events = this.runs.get(runId)?.events ?? [];
    return copy(events.filter((e) => e.seq > (q.after ?? 0) && (q.upTo === undefined || e.seq <= q.upTo)).slice(0, q.limit));
  }

  async listEventsOfType(runId: string, prefix: string): Promise<Envelope[]> {
    return copy((this.runs.get(runId)?.events ?? []).filter((e) => e.type.startsWith(prefix)));
  }

  async getEvents(runId: string, ids: string[]): Promise<Envelope[]> {
    const want = new Set(ids);
    return copy((this.runs.get(runId)?.events ?? []).filter((e) => want.has(e.id)));
  }

  async eventsById(refs: ReadonlyArray<{ runId: string; id: string }>): Promise<Envelope[]> {
    const out: Envelope[] = [];
    for (const r of refs) out.push(...(await this.getEvents(r.runId, [r.id])));
    return out;
  }

  async eventsAfter(ranges: ReadonlyArray<{ runId: string; after: number }>): Promise<Map<string, Envelope[]>> {
    const out = new Map<string, Envelope[]>();
    for (const r of ranges) out.set(r.runId, await this.listEvents(r.runId, { after: r.after, limit: Number.MAX_SAFE_INTEGER }));
    return out;
  }

  async firstEvents(runIds: string[]): Promise<Map<string, Envelope>> {
    const out = new Map<string, Envelope>();
    for (const id of runIds) {
      const first = this.runs.get(id)?.events[0];
      if (first) out.set(id, copy(first));
    }
    return out;
  }

  async latestCheckpoint(runId: string): Promise<CheckpointRecord | undefined> {
    return this.whole(copy(this.runs.get(runId)?.checkpoints.at(-1)));
  }

  /** A checkpoint with the parts its state leaves to the log put back (see @ao/runtime `state-refs.ts`). */
  private whole(cp: CheckpointRecord | undefined): CheckpointRecord | undefined {
    const h = cp && this.runs.get(cp.runId);
    if (h) putRefs(cp.state, (id) => h.events.find((e) => e.id === id), `checkpoint ${cp.step} of run ${cp.runId}`);
    return cp;
  }

  async latestCheckpoints(runIds: string[]): Promise<Map<string, CheckpointRecord>> {
    const out = new Map<string, CheckpointRecord>();
    for (const id of runIds) {
      const cp = await this.latestCheckpoint(id);
      if (cp) out.set(id, cp);
    }
    return out;
  }

  async getCheckpoint(runId: string, step: number): Promise<CheckpointRecord | undefined> {
    return this.whole(copy(this.runs.get(runId)?.checkpoints.find((c) => c.step === step)));
  }

  async listCheckpoints(runId: string): Promise<CheckpointSummary[]> {
    return (this.runs.get(runId)?.checkpoints ?? []).map(({ state: _s, ...rest }) => ({ ...rest }));
  }

  async renewLeases(owner: string, runIds: string[], leaseMs: number): Promise<{ renewed: string[]; cancelRequested: string[]; signalled: string[] }> {
    const renewed: string[] = [];
    const cancelRequested: string[] = [];
    for (const id of runIds) {
      const h = this.runs.get(id);
      if (!h || h.run.owner !== owner) continue;
      h.run = { ...h.run, leaseExpiresAt: new Date(systemClock.now() + leaseMs).toISOString() };
      renewed.push(id);
      if (h.run.cancelRequested) cancelRequested.push(id);
    }
    return { renewed, cancelRequested, signalled: [] };
  }

  async releaseLeases(owner: string, runIds: string[]): Promise<void> {
    for (const id of runIds) {
      const h = this.runs.get(id);
      if (h?.run.owner === owner) h.run = { ...h.run, owner: null, leaseExpiresAt: null };
    }
  }

  async requestCancel(runId: string): Promise<boolean> {
    const h = this.runs.get(runId);
    if (!h || TERMINAL_STATUSES.has(h.run.status)) return false;
    h.run = { ...h.run, cancelRequested: true };
    return true;
  }

  // A verification takes over nothing and answers nobody.
  async claimRuns(): Promise<RunRecord[]> {
    return [];
  }
  async claimRun(): Promise<undefined> {
    return undefined;
  }
  async pendingSignals(): Promise<SignalRecord[]> {
    return [];
  }
  async getSignal(): Promise<undefined> {
    return undefined;
  }
  async wakeRun(): Promise<undefined> {
    return undefined;
  }
  addSignal(): Promise<never> {
    return Promise.reject(new AoError('AO_RUN_NOT_WAITING', "a run being verified takes no answers: its original's are served"));
  }

  private readonly secrets = new Map<string, SecretRecord>();
  async putSecrets(rows: SecretRecord[]): Promise<void> {
    for (const r of rows) this.secrets.set(`${r.runId}\0${r.handle}`, copy(r));
  }
  async getSecrets(runIds: string[], handles: string[]): Promise<SecretRecord[]> {
    return runIds.flatMap((r) => handles.map((h) => this.secrets.get(`${r}\0${h}`))).filter((x) => x !== undefined);
  }

  async createApiKey(): Promise<ApiKeyRecord> {
    throw new AoError('AO_INTERNAL', 'the scratch store keeps no API keys');
  }
  async getApiKey(): Promise<undefined> {
    return undefined;
  }
  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return [];
  }
  async revokeApiKey(): Promise<boolean> {
    return false;
  }
  async hasApiKeys(): Promise<boolean> {
    return false;
  }

  async takeNodeId(): Promise<{ taken: true }> {
    return { taken: true };
  }
  async beatNodeId(): Promise<boolean> {
    return true;
  }
  async releaseNodeId(): Promise<void> {}
  async nodeIdHolder(): Promise<NodeIdHolder | undefined> {
    return undefined;
  }

  async sweep(): Promise<{ runs: number; checkpoints: number }> {
    return { runs: 0, checkpoints: 0 };
  }
  async close(): Promise<void> {
    this.runs.clear();
  }
}
