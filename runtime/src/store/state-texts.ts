import { stateBase, stateBaseOf, unzipStateAgainst } from './row-zip.js';
import type { StateBase } from './row-zip.js';
import { stateTextOf } from './store-rows.js';

/** A checkpoint's state as stored: JSON (`state`), or deflated (`zstate`, base64), alone or against a keyframe. */
export interface StoredState {
  runId: string;
  step: number;
  state: string | null;
  zstate: string | null;
}

/** Keyframes read back (`run/step`), as later states of their run are read against them: a few, recent. */
export class KeyframeCache {
  private readonly bases = new Map<string, StateBase>();
  get(key: string): StateBase | undefined {
    return this.bases.get(key);
  }
  set(key: string, base: StateBase): void {
    if (this.bases.size >= 256) this.bases.delete(this.bases.keys().next().value!);
    this.bases.set(key, base);
  }
}

/**
 * The stored JSON texts of checkpoint states (see row-zip.ts), in the order of `rows`. A state
 * deflated against a keyframe is read against it: one of `rows` itself, a remembered one, or one
 * of those `read` reads (one read for all of them).
 */
export async function stateTexts(
  rows: readonly StoredState[],
  read: (keys: ReadonlyArray<{ runId: string; step: number }>) => Promise<StoredState[]>,
  cache: KeyframeCache,
): Promise<string[]> {
  const zs = rows.map((r) => (r.zstate ? Buffer.from(r.zstate, 'base64') : undefined));
  const bases = rows.map((_, i) => (zs[i] ? stateBaseOf(zs[i]) : undefined));
  const texts = rows.map((r, i) => (bases[i] === undefined ? stateTextOf(r) : undefined));
  const local = new Map<string, number>();
  rows.forEach((r, i) => texts[i] !== undefined && local.set(`${r.runId}/${r.step}`, i));
  const baseOf = (runId: string, step: number): StateBase | undefined => {
    const key = `${runId}/${step}`;
    let b = cache.get(key);
    const i = local.get(key);
    if (!b && i !== undefined) cache.set(key, (b = stateBase(step, texts[i]!)));
    return b;
  };
  const missing = new Map<string, { runId: string; step: number }>();
  rows.forEach((r, i) => {
    if (bases[i] !== undefined && !baseOf(r.runId, bases[i])) missing.set(`${r.runId}/${bases[i]}`, { runId: r.runId, step: bases[i] });
  });
  if (missing.size) {
    for (const f of await read([...missing.values()])) {
      // A keyframe is deflated alone; a row that is not one is no keyframe (the state is then reported as not found).
      if (f.zstate && stateBaseOf(Buffer.from(f.zstate, 'base64')) !== undefined) continue;
      cache.set(`${f.runId}/${f.step}`, stateBase(f.step, stateTextOf(f)));
    }
  }
  return rows.map((r, i) => texts[i] ?? unzipStateAgainst(zs[i]!, baseOf(r.runId, bases[i]!), `checkpoint ${r.step} of run ${r.runId}`));
}
