import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ToolDefinition } from '../tools/registry.js';

/**
 * Which parts of a tool's arguments and results are secret, read from their JSON schemas: a zod
 * field with `.meta({ secret: true })` (zod copies meta into the JSON schema), or, in a schema
 * that comes as JSON (MCP tools), `"x-secret": true` or `"writeOnly": true`. A marked node makes
 * everything under it secret.
 */
export type JsonSchema = Record<string, unknown>;

/** What stands in the log, and before the model, for a secret value a tool returned. */
export const HANDLE = /secret:[0-9a-f]{32}/g;
const WHOLE_HANDLE = /^secret:[0-9a-f]{32}$/;
/** What a literal secret argument reads as in events and spans. */
export const REDACTED = '[redacted]';

export const isHandle = (v: unknown): v is string => typeof v === 'string' && WHOLE_HANDLE.test(v);

/**
 * The handle of a secret value: derived from the effect key (`actor/n`, the same in a replay and
 * after a crash) and the value's JSON pointer in the result, so a call re-run after a crash or in
 * a replay produces the same handle, and requests that carry it hash the same.
 */
export function handleFor(effectKey: string, pointer: string): string {
  return `secret:${createHash('sha256').update('ao-secret\0').update(effectKey).update('\0').update(pointer).digest('hex').slice(0, 32)}`;
}

function marked(s: JsonSchema): boolean {
  return s.secret === true || s['x-secret'] === true || s.writeOnly === true;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/** Whether any node of the schema is marked secret. */
export function hasSecretMarks(s: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (Array.isArray(s)) return s.some((x) => hasSecretMarks(x, depth + 1));
  if (!isObject(s)) return false;
  if (marked(s)) return true;
  return Object.values(s).some((v) => hasSecretMarks(v, depth + 1));
}

function deref(root: JsonSchema, s: JsonSchema): JsonSchema | undefined {
  const ref = s.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
  let cur: unknown = root;
  for (const part of ref.slice(2).split('/')) cur = isObject(cur) ? cur[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return isObject(cur) ? cur : undefined;
}

/**
 * The JSON pointers of the secret values in `value` under `schema`: walked together, through
 * properties, additional and pattern properties, items and prefix items, `$ref`s into the same
 * document, and every branch of allOf/anyOf/oneOf (a value marked by any branch is secret).
 */
export function secretPointers(schema: JsonSchema, value: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (s: unknown, v: unknown, ptr: string, depth: number): void => {
    if (!isObject(s) || depth > 64 || v === undefined) return;
    if (marked(s)) {
      out.add(ptr);
      return;
    }
    const target = deref(schema, s);
    if (target) walk(target, v, ptr, depth + 1);
    for (const k of ['allOf', 'anyOf', 'oneOf'] as const) {
      const branches = s[k];
      if (Array.isArray(branches)) for (const b of branches) walk(b, v, ptr, depth + 1);
    }
    if (isObject(v)) {
      const props = isObject(s.properties) ? s.properties : {};
      const patterns = isObject(s.patternProperties) ? Object.entries(s.patternProperties) : [];
      for (const [key, child] of Object.entries(v)) {
        const p = `${ptr}/${esc(key)}`;
        let matched = false;
        if (key in props) {
          walk(props[key], child, p, depth + 1);
          matched = true;
        }
        for (const [re, sub] of patterns) {
          if (safeTest(re, key)) {
            walk(sub, child, p, depth + 1);
            matched = true;
          }
        }
        if (!matched) walk(s.additionalProperties, child, p, depth + 1);
      }
    } else if (Array.isArray(v)) {
      const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
      v.forEach((child, i) => walk(i < prefix.length ? prefix[i] : s.items, child, `${ptr}/${i}`, depth + 1));
    }
  };
  walk(schema, value, '', 0);
  return out;
}

function safeTest(re: string, key: string): boolean {
  try {
    return new RegExp(re, 'u').test(key);
  } catch {
    return false;
  }
}

/** `value` with each value at a pointer in `at` replaced by `fn(value, pointer)`. */
function replaceAt(value: unknown, at: ReadonlySet<string>, fn: (v: unknown, ptr: string) => unknown, ptr = ''): unknown {
  if (at.has(ptr)) return fn(value, ptr);
  if (Array.isArray(value)) return value.map((v, i) => replaceAt(v, at, fn, `${ptr}/${i}`));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceAt(v, at, fn, `${ptr}/${esc(k)}`)]));
  return value;
}

/** The secret parts of a tool's schemas, when it has any (cached per definition). */
export interface ToolSecrets {
  /** The input's JSON schema, when some argument is marked secret. */
  readonly input?: JsonSchema;
  /** The result's JSON schema, when some part of the result is marked secret. */
  readonly output?: JsonSchema;
}

const cache = new WeakMap<ToolDefinition, ToolSecrets>();
const NONE: ToolSecrets = Object.freeze({});

export function toolSecrets(def: ToolDefinition | undefined): ToolSecrets {
  if (!def) return NONE;
  let s = cache.get(def);
  if (!s) {
    const input = def.parameters ?? (z.toJSONSchema(def.input, { io: 'input', unrepresentable: 'any' }) as JsonSchema);
    const output = def.outputParameters ?? (def.output ? (z.toJSONSchema(def.output, { io: 'output', unrepresentable: 'any' }) as JsonSchema) : undefined);
    s = Object.freeze({ ...(hasSecretMarks(input) ? { input } : {}), ...(output && hasSecretMarks(output) ? { output } : {}) });
    cache.set(def, s);
  }
  return s;
}

/**
 * Arguments as they may be journaled and traced: a secret argument the model (or `args()`) wrote
 * literally reads `[redacted]`; a handle stays (it is not the secret, and a reader can follow it).
 */
export function redactArgs(sec: ToolSecrets, args: unknown): unknown {
  if (!sec.input) return args;
  return replaceAt(args, secretPointers(sec.input, args), (v) => (isHandle(v) ? v : REDACTED));
}

/**
 * Replace each secret value of a result by its handle; returns the result the log and the model
 * see, and the values to seal. Absent and null values are not secrets and stay as they are.
 */
export function sealResult(sec: ToolSecrets, effectKey: string, result: unknown): { shown: unknown; sealed: Array<{ handle: string; value: unknown }> } {
  if (!sec.output) return { shown: result, sealed: [] };
  const sealed: Array<{ handle: string; value: unknown }> = [];
  const shown = replaceAt(result, secretPointers(sec.output, result), (v, ptr) => {
    if (v === null || v === undefined) return v;
    const handle = handleFor(effectKey, ptr);
    sealed.push({ handle, value: v });
    return handle;
  });
  return { shown, sealed };
}

/** Every string of `args` that holds a handle, with its pointer and whether the place is secret. */
export function handlesIn(sec: ToolSecrets, args: unknown): Array<{ ptr: string; handles: string[]; secret: boolean }> {
  const secret = sec.input ? secretPointers(sec.input, args) : new Set<string>();
  const out: Array<{ ptr: string; handles: string[]; secret: boolean }> = [];
  const walk = (v: unknown, ptr: string, under: boolean): void => {
    const inSecret = under || secret.has(ptr);
    if (typeof v === 'string') {
      const found = v.match(HANDLE);
      if (found) out.push({ ptr, handles: [...new Set(found)], secret: inSecret });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${ptr}/${i}`, inSecret));
    else if (isObject(v)) for (const [k, x] of Object.entries(v)) walk(x, `${ptr}/${esc(k)}`, inSecret);
  };
  walk(args, '', false);
  return out;
}

/**
 * `args` with the handles at `places` replaced by their values: a string that is exactly a handle
 * becomes the value itself (any JSON), a handle inside a longer string (`Bearer secret:…`) its
 * text.
 */
export function substituteHandles(args: unknown, places: ReadonlySet<string>, values: ReadonlyMap<string, unknown>): unknown {
  return replaceAt(args, places, (v) => {
    if (typeof v !== 'string') return v;
    if (isHandle(v) && values.has(v)) return values.get(v);
    return v.replace(HANDLE, (h) => {
      if (!values.has(h)) return h;
      const x = values.get(h);
      return typeof x === 'string' ? x : JSON.stringify(x);
    });
  });
}

/** A JSON pointer as a dotted field name for error messages (`/headers/authorization` -> `headers.authorization`). */
export const fieldOf = (ptr: string): string =>
  ptr
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.') || '(root)';
