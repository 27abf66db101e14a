import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { PGliteOptions } from '@electric-sql/pglite';

/** A compiled WebAssembly module, as PGlite takes it (the package builds' TypeScript libs have no `WebAssembly` namespace). */
type WasmModule = NonNullable<PGliteOptions['pgliteWasmModule']>;

let compiled: Promise<WasmModule | undefined> | undefined;

/** Node's global WebAssembly (the project's TypeScript libs do not declare it). */
const wasmApi = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> } }).WebAssembly;

/**
 * PGlite's WebAssembly module, compiled once per process and handed to every PGlite it opens
 * (its `pgliteWasmModule` option). Left to itself, each PGlite reads the 9 MB file and compiles it
 * again (V8 finds the earlier compilation only after hashing the bytes). Called before a new data
 * directory is copied from its template, the compilation (on V8's background threads) overlaps
 * the copy. `undefined` when the file is not where this PGlite version keeps it: PGlite then
 * loads it itself, as before.
 */
export function pgliteWasmModule(): Promise<WasmModule | undefined> {
  compiled ??= (async () => {
    let bytes: Buffer;
    try {
      // Read synchronously: the copy that follows holds the thread, and an async read's callback would wait for it.
      bytes = readFileSync(join(dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')), 'pglite.wasm'));
    } catch {
      return undefined;
    }
    // A module that does not compile here is left to PGlite, which reports it as it always did.
    return wasmApi.compile(bytes).catch(() => undefined);
  })();
  return compiled;
}
