import { describe, expect, it } from 'vitest';
import { actorPath } from '../envelope/mod.js';
import { createActorSystem } from './actor-system.js';
import type { Behaviour } from './actor-system.js';

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

describe('actor system', () => {
  it('processes one message at a time, in order, threading state', async () => {
    const sys = createActorSystem();
    const seen: number[] = [];
    const counter: Behaviour<number, number> = {
      initialState: 0,
      async receive(state, msg) {
        await tick(1);
        seen.push(state + msg);
        return state + msg;
      },
    };
    const a = sys.spawn(actorPath('counter'), counter);
    for (let i = 1; i <= 5; i++) a.tell(i);
    await tick(100);
    expect(seen).toEqual([1, 3, 6, 10, 15]);
    sys.shutdown();
  });

  it('gives children their parent path and stops them with the parent', async () => {
    const sys = createActorSystem();
    const paths: string[] = [];
    const stopped: string[] = [];
    const child: Behaviour<string, null> = { initialState: null, receive: (s, _m, ctx) => (paths.push(ctx.path), s), onStop: () => void stopped.push('kid') };
    let kid: { stopped: boolean } | undefined;
    const parent: Behaviour<'go', null> = {
      initialState: null,
      receive(s, _m, ctx) {
        const k = ctx.spawn('kid', child);
        kid = k;
        k.tell('hi');
        return s;
      },
    };
    const p = sys.spawn(actorPath('supervisor'), parent);
    p.tell('go');
    await tick(50);
    expect(paths).toEqual(['supervisor/kid']);
    p.stop();
    await tick(20);
    expect(kid?.stopped).toBe(true);
    // Regression: nact's own stop never reached children, so their onStop (which aborts in-flight
    // calls) did not run.
    expect(stopped).toEqual(['kid']);
    sys.shutdown();
  });

  it('stops every actor and its children on shutdown', async () => {
    const sys = createActorSystem();
    const stopped: string[] = [];
    const leaf: Behaviour<'go', null> = { initialState: null, receive: (s) => s, onStop: () => void stopped.push('leaf') };
    const root: Behaviour<'go', null> = {
      initialState: null,
      receive(s, _m, ctx) {
        ctx.spawn('leaf', leaf);
        return s;
      },
      onStop: () => void stopped.push('root'),
    };
    sys.spawn(actorPath('root'), root).tell('go');
    await tick(20);
    sys.shutdown();
    await tick(20);
    expect(stopped.sort()).toEqual(['leaf', 'root']);
  });

  it('reports a crash to onCrash and stops the actor', async () => {
    const sys = createActorSystem();
    const crashes: string[] = [];
    const handled: string[] = [];
    const a = sys.spawn(actorPath('x'), {
      initialState: null,
      receive(s, msg: string) {
        if (msg === 'boom') throw new Error('kaput');
        handled.push(msg);
        return s;
      },
      onCrash: (err, msg, path) => crashes.push(`${path}:${msg}:${(err as Error).message}`),
    });
    a.tell('ok');
    a.tell('boom');
    a.tell('after');
    await tick(50);
    expect(crashes).toEqual(['x:boom:kaput']);
    expect(handled).toEqual(['ok']);
    expect(a.stopped).toBe(true);
    sys.shutdown();
  });
});
