import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { AoError } from '@ao/graphs';
import { systemClock } from '../clock/mod.js';
import type { NodeIdHolder, Store } from '../store/mod.js';

/** This process as the id check sees it: where a pid means this very process. */
export interface ProcessRef {
  host: string;
  /** The pid namespace (Linux `/proc/self/ns/pid`; empty elsewhere): containers sharing a host name do not share pids. */
  pidNs: string;
  pid: number;
}

export function thisProcess(): ProcessRef {
  let pidNs = '';
  try {
    pidNs = readlinkSync('/proc/self/ns/pid');
  } catch {
    /* not Linux: the host name alone */
  }
  return { host: hostname(), pidNs, pid: process.pid };
}

/** Whether a process with this pid exists here (signal 0 checks without sending anything). */
export function pidRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** How often a holder beats: a third of its lease, at most 2 s, so a refused node knows within seconds. */
export const beatIntervalMs = (staleMs: number): number => Math.max(50, Math.min(2_000, Math.floor(staleMs / 3)));

/** Instances held by this process: an in-process holder with our pid is alive, not a predecessor. */
const held = new Set<string>();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function holderText(h: NodeIdHolder): string {
  return `pid ${h.pid} on host ${h.host}, started ${h.startedAt}, last heartbeat ${(h.heartbeatAgeMs / 1000).toFixed(1)} s ago`;
}

/** AO_NODE_ID_IN_USE, naming the process that holds the id. */
export function nodeIdInUse(id: string, h: NodeIdHolder | undefined, what: 'refused' | 'lost'): AoError {
  const holder = h ? holderText(h) : 'another process';
  const message =
    what === 'refused'
      ? `node id "${id}" is in use by a live node (${holder}); this node does not start, so that node's runs keep one writer. Stop that node, give this one another AO_NODE_ID, or leave AO_NODE_ID unset for a unique one`
      : `node id "${id}" is now held by another process (${holder}): it took the id while this one was silent past its lease, so its runs are that process's; this node stops hosting at once, writes nothing more under the id, and exits`;
  return new AoError('AO_NODE_ID_IN_USE', message, {
    field: 'AO_NODE_ID',
    ...(h
      ? { details: { id, host: h.host, pid: h.pid, startedAt: h.startedAt, lastHeartbeat: h.heartbeatAt, heartbeatAgeMs: Math.round(h.heartbeatAgeMs) } }
      : { details: { id } }),
  });
}

export interface TakeNodeIdOptions {
  store: Store;
  id: string;
  /** This process's lease: after this long without a beat it counts as dead and its id may be taken. */
  staleMs: number;
  /** Told when the id is held and this process waits, or takes it from a process that is gone. */
  log?: (message: string) => void;
  /** For tests: who this process is, and whether a pid runs here. */
  self?: ProcessRef;
  isRunning?: (pid: number) => boolean;
}

/**
 * This process's hold on its runtime node id (table `node_ids`). Leases and every commit are
 * fenced by the owner id, so two live processes with one id would be two writers of the same
 * runs: a node takes its id before it claims anything and keeps it by beating
 * (`beatIntervalMs`). A random instance token per process tells a restarted process from the one
 * before it.
 *
 * @example
 * const identity = await NodeIdentity.take({ store, id: 'n1', staleMs: config.AO_LEASE_MS });
 * // ... every beatIntervalMs: if (!(await identity.beat())) stop hosting at once
 * await identity.release();
 */
export class NodeIdentity {
  private released = false;

  private constructor(
    private readonly store: Store,
    readonly id: string,
    readonly instance: string,
    readonly self: ProcessRef,
    readonly staleMs: number,
  ) {}

  /**
   * Take `id` for this process. Free, or held by a process whose heartbeat is older than its lease:
   * taken at once. Held by a process that is provably gone (same host and pid namespace, its pid
   * not running): taken at once (a node restarted after a crash takes its runs back). Otherwise
   * the holder may be alive or may have just died elsewhere: wait, reading its heartbeat, until it
   * beats (alive: AO_NODE_ID_IN_USE, nothing claimed) or goes stale (taken). A live holder beats
   * every 2 s at most, so a refusal comes within seconds; a dead one's id is free within a lease.
   * Two processes asking at the same moment: the store's row lock lets one win; the other then
   * sees a holder that beats. On PGlite (one process's copy of the database does not see
   * another's writes) a holder on this host whose pid runs is refused at once.
   */
  static async take(o: TakeNodeIdOptions): Promise<NodeIdentity> {
    const self = o.self ?? thisProcess();
    const isRunning = o.isRunning ?? pidRunning;
    const instance = randomUUID();
    const claim = { id: o.id, instance, ...self, staleMs: o.staleMs };
    const gone = (h: NodeIdHolder) => h.host === self.host && h.pidNs === self.pidNs && !held.has(h.instance) && (h.pid === self.pid || !isRunning(h.pid));
    let first: NodeIdHolder | undefined;
    let replacing: string | undefined;
    let last: NodeIdHolder | undefined;
    // A bound for the unexpected (a holder whose heartbeat neither moves nor ages); set again once
    // the holder is seen, from its own lease.
    // Wall time (the system clock): a bound on a real wait for another process, as the sleeps are.
    let giveUpAt = systemClock.now() + 60_000;
    for (;;) {
      if (systemClock.now() > giveUpAt) throw nodeIdInUse(o.id, last, 'refused');
      const r = await o.store.takeNodeId(replacing !== undefined ? { ...claim, replacing } : claim);
      if (r.taken) {
        held.add(instance);
        if (first) o.log?.(`node id "${o.id}": the heartbeat of its holder (${holderText(first)} when first seen) went stale; this node took the id`);
        return new NodeIdentity(o.store, o.id, instance, self, o.staleMs);
      }
      const h = r.holder;
      if (!h) continue; // let go between the two statements: ask again
      last = h;
      if (h.instance !== replacing && gone(h)) {
        o.log?.(`node id "${o.id}" was held by ${holderText(h)}, a process that is gone; this node takes the id`);
        replacing = h.instance;
        continue;
      }
      // Embedded: another process's open PGlite never shows this one its beats (nor anything it
      // writes after this one opened the data dir), so a live pid on this host is taken for the
      // holder at once, rather than waited on until its heartbeat looks stale here.
      if (o.store.kind === 'pglite' && h.host === self.host && h.pidNs === self.pidNs && (held.has(h.instance) || isRunning(h.pid)))
        throw nodeIdInUse(o.id, h, 'refused');
      // It beat (or another process took the id) since first seen: a live holder.
      if (first && (h.instance !== first.instance || h.heartbeatAt !== first.heartbeatAt)) throw nodeIdInUse(o.id, h, 'refused');
      if (!first) {
        first = h;
        giveUpAt = systemClock.now() + Math.max(0, h.staleMs - h.heartbeatAgeMs) + 60_000;
        o.log?.(
          `node id "${o.id}" is held by ${holderText(h)}; waiting for it to beat (then this node refuses to start) or to go stale within ${Math.max(0, Math.ceil((h.staleMs - h.heartbeatAgeMs) / 1000))} s (then this node takes the id)`,
        );
      }
      await sleep(Math.max(20, Math.min(250, h.staleMs - h.heartbeatAgeMs + 20)));
    }
  }

  /** Beat: false once another process holds the id (this one must stop writing at once). */
  async beat(): Promise<boolean> {
    if (this.released) return false;
    return this.store.beatNodeId(this.id, this.instance);
  }

  /** Who holds the id now (to name it when this process lost it). */
  holder(): Promise<NodeIdHolder | undefined> {
    return this.store.nodeIdHolder(this.id);
  }

  /** Let go of the id (graceful shutdown): a node started with it next takes it at once. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    held.delete(this.instance);
    await this.store.releaseNodeId(this.id, this.instance);
  }

  /** Forget the id without touching the store (it was taken over: the row is the new holder's). */
  abandon(): void {
    this.released = true;
    held.delete(this.instance);
  }
}
