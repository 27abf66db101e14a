import type { PGlite } from '@electric-sql/pglite';
import { parse, protocol } from '@electric-sql/pglite';

/**
 * Named prepared statements on PGlite, as `pg` gives them on Postgres (`{name, text}`). PGlite's
 * `query` parses and plans its text on every call and makes six trips into WebAssembly (parse,
 * describe, bind, describe, execute, sync); the hot path's few statements (a commit) are
 * parsed once here, and each call is one trip: bind, describe, execute and sync in one message.
 * Postgres keeps the statement's plan (a generic one once it is as good as a fresh one).
 *
 * It holds PGlite's transaction mutex, as `query` does, so it never runs inside another
 * caller's transaction.
 */
export class PreparedStatements {
  /** Each prepared name's parameter types (oids), from the statement's description. */
  private readonly prepared = new Map<string, { text: string; types: number[] }>();

  constructor(private readonly client: PGlite) {}

  async query(name: string, text: string, values: readonly unknown[]): Promise<Array<Record<string, unknown>>> {
    const c = this.client;
    // On a turn of the event loop of its own, as the store's other statements (see `yielding` in
    // pglite-store.ts): PGlite answers through promises, and a chain of statements that never
    // leaves the microtask queue starves I/O and the other actors' mailboxes.
    await nextTurn();
    return c._runExclusiveTransaction(() =>
      c.runExclusive(async () => {
        let p = this.prepared.get(name);
        if (p && p.text !== text) throw new Error(`prepared statement "${name}" was prepared with another text`);
        if (!p) {
          const { messages } = await c.execProtocol(
            concat([protocol.serialize.parse({ name, text }), protocol.serialize.describe({ type: 'S', name }), protocol.serialize.sync()]),
          );
          p = { text, types: parse.parseDescribeStatementResults(messages) };
          this.prepared.set(name, p);
        }
        const types = p.types;
        const args = values.map((v, i) => (v === null || v === undefined ? null : serialize(c, types[i], v)));
        const { messages } = await c.execProtocol(
          concat([
            protocol.serialize.bind({ statement: name, values: args }),
            protocol.serialize.describe({ type: 'P' }),
            protocol.serialize.execute({}),
            protocol.serialize.sync(),
          ]),
        );
        return (parse.parseResults(messages, c.parsers)[0]?.rows ?? []) as Array<Record<string, unknown>>;
      }),
    );
  }
}

/** Resolves on the event loop's next turn (after the I/O and timers already due). */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

function serialize(c: PGlite, oid: number | undefined, v: unknown): string {
  const s = oid !== undefined ? c.serializers[oid] : undefined;
  return s ? s(v) : String(v);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
