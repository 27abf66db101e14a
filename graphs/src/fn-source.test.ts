import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, transformSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalSource } from './fn-source.js';
import { exampleGraphs } from './examples/mod.js';
import type { GraphBuilder } from './builder.js';

/** A function compiled from `code` (an expression), as the engine would receive it. */
const fn = (code: string) => new Function(`return (${code});`)() as (...a: never[]) => unknown;

/** `code` (TypeScript) as esbuild prints it: formatted (the CLI bundle, vitest) or whitespace-minified (tsx). */
const printed = (code: string, minify: boolean) =>
  transformSync(`export default (${code});`, { loader: 'ts', minifyWhitespace: minify })
    .code.replace(/^export default\s*\(?/, '')
    .replace(/\)?;?\s*$/, '');

describe('the source a graph version hashes', () => {
  const predicates = [
    "(ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent === 'refund'",
    '(ctx) => approved(ctx) || (ctx.iterations.draft ?? 0) >= MAX_DRAFTS',
    "(ctx) => { const t = ctx.outputs.critique?.text ?? ''; return /^APPROVED\\b/.test(t); }",
    '(ctx) => `${ctx.input.kind}-x` === "a-x"',
    'async (ctx) => { if (typeof ctx.n === "number") { return ctx.n - -1 > 2; } else { return false; } }',
  ];

  it.each(predicates)('is the same whichever tool printed it: %s', (ts) => {
    const bundled = printed(ts, false);
    const minified = printed(ts, true);
    // The texts differ (whitespace, parentheses, quotes), the canonical source does not.
    expect(bundled).not.toBe(minified);
    expect(canonicalSource(fn(bundled))).toBe(canonicalSource(fn(minified)));
    // Idempotent on tsx's output: versions computed from source before keep their value.
    expect(canonicalSource(fn(minified))).toBe(minified);
  });

  it('a hand-written predicate (single quotes, comments, spaces) reads as its compiled form', () => {
    const hand = fn("(ctx) => /* refunds only */ ctx.input?.intent === 'refund' // the intent\n");
    expect(canonicalSource(hand)).toBe(canonicalSource(fn(printed("(ctx) => ctx.input?.intent === 'refund'", false))));
    expect(canonicalSource(hand)).toBe('ctx=>ctx.input?.intent==="refund"');
  });

  it('changes when what the predicate does changes', () => {
    const base = canonicalSource(fn("(ctx) => ctx.input?.intent === 'refund'"));
    for (const other of [
      "(ctx) => ctx.input?.intent !== 'refund'",
      "(ctx) => ctx.input?.intent === 'refunds'",
      "(ctx) => ctx.input?.intent == 'refund'",
      "(ctx) => ctx.input.intent === 'refund'",
      "(c) => c.input?.intent === 'refund'",
    ]) {
      expect(canonicalSource(fn(other)), other).not.toBe(base);
    }
    expect(canonicalSource(fn('(a) => a - -1'))).toBe('a=>a- -1');
    expect(canonicalSource(fn('(a) => a - -1'))).not.toBe(canonicalSource(fn('(a) => a + +1')));
    expect(canonicalSource(fn("(a) => a === 'x y'"))).not.toBe(canonicalSource(fn("(a) => a === 'xy'")));
  });

  describe('of the example graphs, bundled as the CLI is and printed as tsx prints them', () => {
    let dir: string | undefined;
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('gives each example the version it has from source', async () => {
      // Inside the package, so the bundles find zod as the package does.
      dir = await mkdtemp(join(import.meta.dirname, '..', '.fn-source-test-'));
      const versions: Record<string, Record<string, string>> = {};
      for (const minify of [false, true]) {
        const out = join(dir, `examples-${minify ? 'minified' : 'bundled'}.mjs`);
        await build({
          entryPoints: [join(import.meta.dirname, 'examples', 'mod.ts')],
          outfile: out,
          bundle: true,
          platform: 'node',
          format: 'esm',
          packages: 'external',
          minifyWhitespace: minify,
          logLevel: 'silent',
        });
        const mod = (await import(pathToFileURL(out).href)) as { exampleGraphs: readonly GraphBuilder<unknown>[] };
        versions[String(minify)] = Object.fromEntries(mod.exampleGraphs.map((g) => [g.name, g.build().version]));
      }
      const here = Object.fromEntries((exampleGraphs as readonly GraphBuilder<unknown>[]).map((g) => [g.name, g.build().version]));
      expect(versions.false).toEqual(here);
      expect(versions.true).toEqual(here);
    });
  });
});
