import nact from 'nact';
import type { Ref } from 'nact';
import type { ActorPath } from '../envelope/mod.js';
import { log } from '../log/mod.js';

/**
 * Our typed face of nact: the only module that imports it (nact is CommonJS, unmaintained and
 * loosely typed; see shared/DEPENDENCIES.md). Mailboxes here are in memory: durability comes from
 * the journal and checkpoints, not from nact.
 */
export interface ActorRef<M> {
  /** Logical address within the run (`supervisor/analyse/branch-1`). */
  readonly path: ActorPath;
  tell(msg: M): void;
  stop(): void;
  readonly stopped: boolean;
  /** The actor runs elsewhere (a node task on another node): what it is told travels over the bus. */
  readonly remote?: boolean;
}

export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly path: ActorPath;
  /** Spawn a child; its path is this actor's path plus `/name`. Stopping this actor stops it. */
  spawn<C, S>(name: string, behaviour: Behaviour<C, S>): ActorRef<C>;
}

/**
 * What an actor does. `receive` handles one message at a time and returns the next state. If it
 * throws, `onCrash` is told and the actor stops (supervision is done by the parent, through
 * messages, so that it is journaled like everything else).
 */
export interface Behaviour<M, S> {
  initialState: S;
  receive(state: S, msg: M, ctx: ActorContext<M>): S | Promise<S>;
  onCrash?(error: unknown, msg: M, path: ActorPath): void;
  /**
   * Called once, synchronously, when the actor is stopped (by its parent, the system, or a crash),
   * before `stop()` returns: abort in-flight work and timers here, so nothing the actor still has
   * under way can act after its parent moved on.
   */
  onStop?(): void;
}

export interface ActorSystem {
  /** Spawn a top-level actor at a logical address (several runs may each have a `supervisor`). */
  spawn<M, S>(path: ActorPath, behaviour: Behaviour<M, S>): ActorRef<M>;
  shutdown(): void;
}

class RefImpl<M> implements ActorRef<M> {
  stopped = false;
  /** Live children: nact's own stop does not reach them (it passes actors where it needs refs). */
  readonly kids = new Set<RefImpl<unknown>>();
  constructor(
    readonly path: ActorPath,
    private readonly ref: Ref<M>,
    private readonly onStop: () => void,
  ) {}

  tell(msg: M): void {
    if (this.stopped) return;
    nact.dispatch(this.ref, msg);
  }

  /** Stop the children first, depth first, each through its own reference, then this actor. */
  stop(): void {
    if (this.stopped) return;
    this.markStopped();
    nact.stop(this.ref);
  }

  /** Stopped as far as we are concerned: children stopped, in-flight work told, no more messages. */
  markStopped(): void {
    this.stopped = true;
    for (const k of [...this.kids]) k.stop();
    try {
      this.onStop();
    } catch (e) {
      log.error(`onStop of ${this.path} threw`, { component: 'actors', err: e });
    }
  }
}

/** nact's own names only need to be unique and URL-safe; our logical paths live in RefImpl. */
let nactNames = 0;

function spawnUnder<M, S>(parent: Ref<unknown>, path: ActorPath, b: Behaviour<M, S>, children?: Set<RefImpl<unknown>>): RefImpl<M> {
  // Assigned once nact has spawned the actor; the closures below only run after that.
  // eslint-disable-next-line prefer-const
  let self: RefImpl<M>;
  const ctx: ActorContext<M> = {
    get self() {
      return self;
    },
    path,
    spawn: <C, T>(childName: string, cb: Behaviour<C, T>) => spawnUnder(self['ref'] as Ref<unknown>, `${path}/${childName}` as ActorPath, cb, self.kids),
  };
  const ref = nact.spawn(parent as never, async (state: S, msg: M) => b.receive(state, msg, ctx), `a${(nactNames += 1)}`, {
    initialState: b.initialState,
    onCrash: (msg: M, err: unknown, sctx: { stop: symbol }) => {
      if (!self.stopped) self.markStopped();
      try {
        b.onCrash?.(err, msg, path);
      } catch (e) {
        log.error(`onCrash of ${path} threw`, { component: 'actors', err: e });
      }
      if (!b.onCrash) log.error(`${path} crashed`, { component: 'actors', msg, err });
      return sctx.stop;
    },
    afterStop: () => {
      if (!self.stopped) self.markStopped();
      children?.delete(self as RefImpl<unknown>);
    },
  } as never) as Ref<M>;
  let stoppedOnce = false;
  self = new RefImpl(path, ref, () => {
    if (stoppedOnce) return;
    stoppedOnce = true;
    b.onStop?.();
  });
  children?.add(self as RefImpl<unknown>);
  return self;
}

export function createActorSystem(): ActorSystem {
  const root = nact.start() as Ref<unknown>;
  const top = new Set<RefImpl<unknown>>();
  return {
    spawn: (path, behaviour) => spawnUnder(root, path, behaviour, top),
    shutdown: () => {
      for (const a of [...top]) a.stop();
      nact.stop(root);
    },
  };
}
