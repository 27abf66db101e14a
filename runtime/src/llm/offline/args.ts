import { firstWords, hash8 } from './digest.js';

type Schema = Record<string, unknown>;

/** What argument generation may draw on besides the schema. */
export interface ArgsContext {
  readonly input: unknown;
  readonly instructions: string;
  readonly nodeId: string;
}

interface Walk extends ArgsContext {
  readonly root: Schema;
  readonly depth: number;
}

const QUERY_NAME = /^(q|query|search|topic|question|prompt|keywords?)$|query$/i;
const ID_NAME = /^id$|Id$|_id$|ID$/;
const AMOUNT_NAME = /amount|cents|price|total/i;
const STOPWORDS = new Set([
  'a',
  'an',
  'the',
  'for',
  'of',
  'to',
  'and',
  'or',
  'that',
  'this',
  'your',
  'from',
  'with',
  'in',
  'on',
  'by',
  'is',
  'are',
  'it',
  'its',
  'own',
  'if',
  'any',
]);
/** Stripe-like prefixes, so a generated `chargeId` looks like one (`ch_offline_…`). */
const ID_PREFIX: Readonly<Record<string, string>> = {
  charge: 'ch',
  customer: 'cus',
  paymentintent: 'pi',
  payment: 'py',
  refund: 're',
  invoice: 'in',
  subscription: 'sub',
  product: 'prod',
  price: 'price',
  user: 'usr',
  order: 'ord',
  message: 'msg',
  account: 'acct',
  session: 'sess',
  file: 'file',
};

/**
 * Arguments for a tool, generated from its JSON schema so they fit it: values come from the run
 * input where a key of the same name fits, else from the property's name and constraints.
 * Optional properties are filled only from the run input.
 */
export function generateArgs(parameters: Schema, ctx: ArgsContext): Record<string, unknown> {
  const value = objectFor(parameters, asRecord(ctx.input), { ...ctx, root: parameters, depth: 0 });
  return asRecord(value) ?? {};
}

function objectFor(s: Schema, source: Record<string, unknown> | undefined, w: Walk): Record<string, unknown> {
  const props = asRecord(s.properties) ?? {};
  const required = new Set(Array.isArray(s.required) ? s.required.map(String) : []);
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(props)) {
    const prop = resolve(asRecord(raw) ?? {}, w.root);
    const given = source?.[name];
    if (given !== undefined && fits(given, prop, w.root)) out[name] = given;
    else if (required.has(name)) out[name] = valueFor(name, prop, source, { ...w, depth: w.depth + 1 });
  }
  return out;
}

function valueFor(name: string, s: Schema, source: Record<string, unknown> | undefined, w: Walk): unknown {
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  // A recursive schema could nest forever; past this depth the smallest value is good enough.
  if (w.depth > 8) return null;
  switch (typeOf(s)) {
    case 'string':
      return stringFor(name, s, w);
    case 'integer':
      return numberFor(name, s, true);
    case 'number':
      return numberFor(name, s, false);
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'array': {
      const items = resolve(asRecord(s.items) ?? {}, w.root);
      const count = Math.min(Math.max(1, num(s.minItems) ?? 0), num(s.maxItems) ?? Infinity);
      const singular = name.replace(/s$/, '') || name;
      return Array.from({ length: count }, () => valueFor(singular, items, source, { ...w, depth: w.depth + 1 }));
    }
    case 'object':
      return objectFor(s, asRecord(source?.[name]) ?? source, w);
    default:
      return stringFor(name, s, w);
  }
}

/** Values for JSON-schema string formats, so a formatted field (`z.email()`, `z.url()`...) validates. */
const FORMAT: Readonly<Record<string, (w: Walk) => string>> = {
  email: () => 'offline@example.com',
  uri: (w) => `https://example.com/offline/${w.nodeId}`,
  url: (w) => `https://example.com/offline/${w.nodeId}`,
  uuid: (w) => {
    const h = `${hash8([w.nodeId, 'a'])}${hash8([w.nodeId, 'b'])}${hash8([w.nodeId, 'c'])}${hash8([w.nodeId, 'd'])}`;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  },
  'date-time': () => '2026-01-01T00:00:00.000Z',
  date: () => '2026-01-01',
  time: () => '00:00:00',
};

function stringFor(name: string, s: Schema, w: Walk): string {
  let v: string;
  const format = typeof s.format === 'string' ? FORMAT[s.format] : undefined;
  if (format) return format(w);
  if (QUERY_NAME.test(name)) v = queryFrom(w);
  else if (ID_NAME.test(name)) {
    const prefix = ID_PREFIX[name.replace(/_?id$/i, '').replace(/_/g, '').toLowerCase()];
    v = `${prefix ? `${prefix}_` : ''}offline_${hash8([name, w.nodeId, w.input ?? null])}`;
  } else if (/email/i.test(name)) v = 'offline@example.com';
  else if (/url|uri|link/i.test(name)) v = `https://example.invalid/${w.nodeId}`;
  else v = `offline ${words(name)} for ${w.nodeId}`;
  const min = num(s.minLength) ?? 0;
  while (v.length < min) v += ` ${words(name) || 'x'}`;
  const max = num(s.maxLength) ?? v.length;
  if (v.length <= max) return v;
  // Cut at a word boundary when that still leaves minLength, so a clipped query stays readable.
  const cut = v.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return space > 0 && space >= min ? cut.slice(0, space) : cut;
}

/** A search query: the run input's topic (or first string) plus the gist of the instructions. */
function queryFrom(w: Walk): string {
  const input = asRecord(w.input);
  const topic =
    typeof w.input === 'string'
      ? w.input
      : typeof input?.topic === 'string'
        ? input.topic
        : Object.values(input ?? {}).find((v): v is string => typeof v === 'string');
  const gist = firstWords(w.instructions, 40)
    .split(' ')
    .filter((x) => x && !STOPWORDS.has(x))
    .slice(0, 4)
    .join(' ');
  return [topic?.trim(), gist].filter(Boolean).join(' ') || w.nodeId;
}

function numberFor(name: string, s: Schema, integer: boolean): number {
  const exMin = num(s.exclusiveMinimum);
  const exMax = num(s.exclusiveMaximum);
  let lo = num(s.minimum) ?? (exMin === undefined ? undefined : exMin + 1);
  let hi = num(s.maximum) ?? (exMax === undefined ? undefined : exMax - 1);
  if (integer) [lo, hi] = [lo === undefined ? lo : Math.ceil(lo), hi === undefined ? hi : Math.floor(hi)];
  let v = num(s.default) ?? (AMOUNT_NAME.test(name) ? Math.max(1000, lo ?? 0) : (lo ?? 1));
  if (hi !== undefined) v = Math.min(v, hi);
  // A narrow exclusive range on a float (e.g. 0 < x < 1) has no room for ±1: take its middle.
  if (!integer && lo !== undefined && hi !== undefined && lo > hi) v = ((exMin ?? lo) + (exMax ?? hi)) / 2;
  const step = num(s.multipleOf);
  return step ? Math.ceil(v / step) * step : v;
}

/** Whether a run-input value fits a property schema (type, enum and range; formats not checked). */
function fits(v: unknown, s: Schema, root: Schema): boolean {
  if ('const' in s) return v === s.const;
  if (Array.isArray(s.enum)) return s.enum.includes(v);
  const t = typeOf(s);
  switch (t) {
    case 'string':
      return typeof v === 'string' && v.length >= (num(s.minLength) ?? 0) && v.length <= (num(s.maxLength) ?? Infinity);
    case 'integer':
    case 'number':
      return (
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (t === 'number' || Number.isInteger(v)) &&
        v >= (num(s.minimum) ?? -Infinity) &&
        v <= (num(s.maximum) ?? Infinity) &&
        v > (num(s.exclusiveMinimum) ?? -Infinity) &&
        v < (num(s.exclusiveMaximum) ?? Infinity)
      );
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'array': {
      const items = resolve(asRecord(s.items) ?? {}, root);
      return Array.isArray(v) && v.every((x) => fits(x, items, root));
    }
    case 'object': {
      const obj = asRecord(v);
      const props = asRecord(s.properties) ?? {};
      const required = Array.isArray(s.required) ? s.required.map(String) : [];
      return (
        obj !== undefined &&
        required.every((k) => k in obj) &&
        Object.entries(obj).every(([k, x]) => !(k in props) || fits(x, resolve(asRecord(props[k]) ?? {}, root), root))
      );
    }
    default:
      return true;
  }
}

/** Follow a local `$ref` and pick the first non-null branch of `anyOf`/`oneOf`. */
function resolve(s: Schema, root: Schema, hops = 0): Schema {
  if (hops > 16) return s;
  if (typeof s.$ref === 'string' && s.$ref.startsWith('#')) {
    const target = s.$ref
      .slice(1)
      .split('/')
      .filter(Boolean)
      .reduce<unknown>((at, key) => asRecord(at)?.[key], root);
    return resolve(asRecord(target) ?? {}, root, hops + 1);
  }
  const branches = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined;
  if (branches) {
    const pick = branches.map((b) => asRecord(b) ?? {}).find((b) => b.type !== 'null') ?? {};
    return resolve(pick, root, hops + 1);
  }
  return s;
}

function typeOf(s: Schema): string | undefined {
  if (typeof s.type === 'string') return s.type;
  if (Array.isArray(s.type)) return s.type.map(String).find((t) => t !== 'null') ?? 'null';
  if (s.properties) return 'object';
  if (s.items) return 'array';
  return undefined;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** `chargeId` -> `charge id`, `max_results` -> `max results`. */
function words(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .toLowerCase()
    .trim();
}
