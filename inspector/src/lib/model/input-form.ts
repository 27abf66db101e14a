/** One input of the "start a run" form: a top-level property of the graph's input JSON Schema. */
export interface InputField {
  name: string;
  /** `json`: anything a single input cannot hold (objects, arrays, unions): a small JSON textarea. */
  type: 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';
  required: boolean;
  /** The choices of an `enum` field (string values only). */
  options?: string[];
  description?: string;
  /** Long text (no `maxLength`, or one past 200): a textarea. */
  long?: boolean;
  /** What the field starts with: the schema's default, as typed. */
  initial: string | boolean;
  /** The constraints, for people (`min length 1`, `1 to 5`). */
  hint?: string;
}

/**
 * The form for a graph's input: one field per top-level property of an object schema, or `json`
 * (one textarea for the whole input) when the schema is absent or not an object with properties.
 */
export type InputForm = { mode: 'fields'; fields: InputField[] } | { mode: 'json'; template: string };

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  description?: string;
  default?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
}

function hint(s: JsonSchema): string | undefined {
  const parts: string[] = [];
  if (s.minLength !== undefined) parts.push(`min length ${s.minLength}`);
  if (s.maxLength !== undefined) parts.push(`max length ${s.maxLength}`);
  if (s.minimum !== undefined && s.maximum !== undefined) parts.push(`${s.minimum} to ${s.maximum}`);
  else if (s.minimum !== undefined) parts.push(`at least ${s.minimum}`);
  else if (s.maximum !== undefined) parts.push(`at most ${s.maximum}`);
  return parts.length ? parts.join(', ') : undefined;
}

function field(name: string, s: JsonSchema, required: boolean): InputField {
  const base = { name, required, ...(s.description ? { description: s.description } : {}), ...(hint(s) ? { hint: hint(s)! } : {}) };
  const text = (v: unknown) => (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  if (Array.isArray(s.enum) && s.enum.length && s.enum.every((v) => typeof v === 'string'))
    return { ...base, type: 'enum', options: s.enum as string[], initial: text(s.default) };
  if (s.type === 'string') return { ...base, type: 'string', long: s.maxLength === undefined || s.maxLength > 200, initial: text(s.default) };
  if (s.type === 'number' || s.type === 'integer') return { ...base, type: s.type, initial: text(s.default) };
  if (s.type === 'boolean') return { ...base, type: 'boolean', initial: s.default === true };
  return { ...base, type: 'json', initial: s.default === undefined ? '' : JSON.stringify(s.default) };
}

/** The form for a graph's input JSON Schema (`null`: the graph takes any input). */
export function inputForm(schema: Record<string, unknown> | null): InputForm {
  const s = (schema ?? {}) as JsonSchema;
  if (s.type !== 'object' || !s.properties || !Object.keys(s.properties).length) return { mode: 'json', template: '{}' };
  const required = new Set(s.required ?? []);
  return { mode: 'fields', fields: Object.entries(s.properties).map(([name, p]) => field(name, p, required.has(name))) };
}

/** The values a form starts with (each field's default). */
export const initialValues = (fields: readonly InputField[]): Record<string, string | boolean> => Object.fromEntries(fields.map((f) => [f.name, f.initial]));

/**
 * The run input from what was typed: empty fields are left out (a required one is then the
 * gateway's to refuse, naming it), numbers and JSON fields parsed; a checkbox is its boolean.
 * What cannot be parsed is an error for its field; every other rule is the gateway's to judge.
 */
export function inputValue(
  fields: readonly InputField[],
  values: Record<string, string | boolean>,
): { input: Record<string, unknown> } | { field: string; message: string } {
  const input: Record<string, unknown> = {};
  for (const f of fields) {
    const v = values[f.name];
    if (f.type === 'boolean') {
      input[f.name] = v === true;
      continue;
    }
    const text = typeof v === 'string' ? v : '';
    if (text.trim() === '') continue;
    if (f.type === 'number' || f.type === 'integer') {
      const n = Number(text.trim());
      if (!Number.isFinite(n)) return { field: f.name, message: `${f.name}: not a number` };
      input[f.name] = n;
    } else if (f.type === 'json') {
      try {
        input[f.name] = JSON.parse(text);
      } catch (e) {
        return { field: f.name, message: `${f.name}: not JSON (${(e as Error).message})` };
      }
    } else input[f.name] = text;
  }
  return { input };
}

/** The field of the form a gateway error names (`input.brief` -> `brief`), if it is one of them. */
export function inputFieldOf(errorField: string | undefined, fields: readonly string[]): string | undefined {
  const m = /^input\.([^.]+)/.exec(errorField ?? '');
  return m && fields.includes(m[1]!) ? m[1] : undefined;
}
