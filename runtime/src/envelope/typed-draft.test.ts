import { describe, expect, it } from 'vitest';
import { isAoError } from '@ao/graphs';
import { actorPath, envelopeIdFor, forwardedDraft, parseEnvelope } from './envelope.js';
import type { AnyDraft, EnvelopeDraft } from './envelope.js';
import { isEnvelopeOf, parseMessage, typed } from './typed.js';
import type { Typed } from './typed.js';

/*
 * What this file proves is checked by the typecheck (`tsc -p tsconfig.json`, which takes test
 * files): every `@ts-expect-error` below must be an error, or the typecheck fails ("unused
 * '@ts-expect-error' directive"). Were drafts `type: string` / `payload: unknown` again, all of
 * them would compile and the typecheck would fail here.
 */

const fields = { runId: 'r', from: actorPath('supervisor'), to: actorPath('supervisor', 'budget'), causationId: null, trace: null, dedupeKey: 'k' };

/** A draft as the journal makes it an envelope (what `parseEnvelope` sees at the boundary). */
const journaled = (d: AnyDraft, seq = 1) => {
  const { dedupeKey, ...rest } = d;
  return { ...rest, id: envelopeIdFor(d.runId, dedupeKey), seq, time: new Date(0).toISOString() };
};

describe('typed drafts', () => {
  it('compile only with the payload of their type', () => {
    const ok: EnvelopeDraft = { ...fields, type: 'budget.release', payload: { key: 'k1' } };
    // @ts-expect-error: `budget.release` has a `key`, not a `name`
    const wrongField: EnvelopeDraft = { ...fields, type: 'budget.release', payload: { name: 'k1' } };
    // @ts-expect-error: the payload of `budget.release` under the type `run.parked`
    const otherType: EnvelopeDraft = { ...fields, type: 'run.parked', payload: { key: 'k1' } };
    // @ts-expect-error: a type that is not in PAYLOADS
    const unknownType: EnvelopeDraft = { ...fields, type: 'made.up', payload: {} };
    // @ts-expect-error: `node.skipped` needs its `reason`
    const missing: Typed = typed('node.skipped', { node: 'a' });
    // @ts-expect-error: a type outside the ones a last word may have
    const narrowed: Typed<'node.completed' | 'node.failed'> = { type: 'node.skipped', payload: { node: 'a', reason: 'r' } };
    const t: string = 'budget.release';
    // @ts-expect-error: a type known only at run time is not a typed draft
    const untyped: AnyDraft = { ...fields, type: t, payload: { key: 'k1' } };
    // ...it enters the journal only as a forwarded draft (one that came over the wire).
    const forwarded: AnyDraft = forwardedDraft({ ...fields, type: t, payload: { key: 'k1' } });
    expect([ok, wrongField, otherType, unknownType, missing, narrowed, untyped, forwarded]).toHaveLength(8);
  });

  it('are still checked at the journal: a payload forced past the types enters read-only and is refused as a message', () => {
    // @ts-expect-error: forced past the types, as a cast or a newer writer would
    const forced: EnvelopeDraft = { ...fields, type: 'budget.release', payload: { name: 'k1' } };
    const env = parseEnvelope(journaled(forced));
    expect(isEnvelopeOf(env, 'budget.release')).toBe(false);
    let err: unknown;
    try {
      parseMessage(env);
    } catch (e) {
      err = e;
    }
    expect(isAoError(err) && err.code === 'AO_ENVELOPE_INVALID' && err.field === 'payload.key').toBe(true);
    const fits = parseEnvelope(journaled(forwardedDraft({ ...fields, type: 'budget.release', payload: { key: 'k1' } }), 2));
    expect(isEnvelopeOf(fits, 'budget.release')).toBe(true);
  });
});
