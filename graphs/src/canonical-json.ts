/**
 * JSON with object keys sorted, so equal definitions hash equal whatever the key order.
 *
 * The definition is `canonicalJsonSlow`: `JSON.stringify` with a replacer that rebuilds each object
 * with its entries sorted. That replacer makes a new object for every object of the value, and
 * the hash of an agent's request (its whole conversation) and the tool messages a resume rebuilds
 * go through it (issue 22: about 30 ms of a 1,000-turn conversation's resume). Plain data (plain
 * objects and arrays, strings, numbers, booleans, null) is written here directly, with the same
 * result; anything else (a `toJSON`, a class instance, an array-index key, whose place
 * `JSON.stringify` fixes itself) takes the definition. `canonical-json.test.ts` compares the two.
 */
export function canonicalJson(v: unknown): string {
  const out = plain(v);
  return out === undefined ? canonicalJsonSlow(v) : out;
}

/** The definition (see above). */
export function canonicalJsonSlow(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}

/** Thrown inside `write` when the value is not plain data. */
const NOT_PLAIN = Symbol('not plain');

/** An array index key (`JSON.stringify` writes those first, in numeric order). */
const INDEX = /^(?:0|[1-9]\d*)$/;

function plain(v: unknown): string | undefined {
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return undefined;
  try {
    return write(v)!;
  } catch (e) {
    if (e === NOT_PLAIN) return undefined;
    throw e;
  }
}

/** `v` as JSON, or undefined where JSON.stringify leaves a property out (undefined, a function, a symbol). */
function write(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
    case 'number':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'object':
      break;
    default:
      throw NOT_PLAIN;
  }
  if (v === null) return 'null';
  const proto: unknown = Object.getPrototypeOf(v);
  if (Array.isArray(v)) {
    if (proto !== Array.prototype || 'toJSON' in v) throw NOT_PLAIN;
    let s = '[';
    for (let i = 0; i < v.length; i++) s += `${i ? ',' : ''}${write(v[i]) ?? 'null'}`;
    return `${s}]`;
  }
  if ((proto !== Object.prototype && proto !== null) || 'toJSON' in v) throw NOT_PLAIN;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let s = '{';
  let first = true;
  for (const k of keys) {
    if (INDEX.test(k) || k === '__proto__') throw NOT_PLAIN;
    const w = write(o[k]);
    if (w === undefined) continue;
    s += `${first ? '' : ','}${JSON.stringify(k)}:${w}`;
    first = false;
  }
  return `${s}}`;
}
