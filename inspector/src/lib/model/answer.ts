import type { WaitInfo } from '../api/types';

/** One input of an answer form, made from a simple property of the answer's JSON Schema. */
export interface AnswerField {
  name: string;
  type: 'string' | 'number' | 'integer' | 'boolean' | 'enum';
  required: boolean;
  /** The choices of an `enum` field. */
  options?: string[];
  description?: string;
  /** Long text (no `maxLength`, or one past 200): a textarea. */
  long?: boolean;
}

/**
 * How the inspector asks for an answer:
 * - `approval`: Approve / Reject buttons (they set `approved`) and the other fields, all optional inputs;
 * - `text`: one text box (an agent's question with the default `{answer: string}`);
 * - `fields`: inputs and a submit button (a schema of simple properties only);
 * - `choice`: one of several shapes told apart by a constant (`oneOf` of objects whose `decision`
 *   is `grant`, `deny` or `fork`: a budget's soft limit), each with its own fields or JSON;
 * - `json`: a JSON textarea, for anything else.
 */
export type AnswerForm =
  | { mode: 'approval'; fields: AnswerField[] }
  | { mode: 'text'; field: string }
  | { mode: 'fields'; fields: AnswerField[] }
  | { mode: 'choice'; key: string; variants: Array<{ value: string; form: Extract<AnswerForm, { mode: 'fields' | 'json' }> }> }
  | { mode: 'json'; template: string };

interface JsonSchema {
  type?: string | string[];
  const?: unknown;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  description?: string;
  maxLength?: number;
}

function simpleField(name: string, s: JsonSchema, required: boolean): AnswerField | undefined {
  const base = { name, required, ...(s.description ? { description: s.description } : {}) };
  if (Array.isArray(s.enum) && s.enum.length && s.enum.every((v) => typeof v === 'string')) return { ...base, type: 'enum', options: s.enum as string[] };
  if (s.type === 'string') return { ...base, type: 'string', long: s.maxLength === undefined || s.maxLength > 200 };
  if (s.type === 'number' || s.type === 'integer' || s.type === 'boolean') return { ...base, type: s.type };
  return undefined;
}

/** A JSON skeleton of an object schema's required properties, to start a JSON answer from. */
function template(s: JsonSchema): string {
  if (s.type !== 'object' || !s.properties) return '{}';
  const sample = (p: JsonSchema): unknown =>
    p.const !== undefined
      ? p.const
      : p.type === 'string'
        ? ''
        : p.type === 'number' || p.type === 'integer'
          ? 0
          : p.type === 'boolean'
            ? false
            : p.type === 'array'
              ? []
              : p.type === 'object'
                ? {}
                : null;
  // What must be there (and constants); everything when nothing is required.
  const must = Object.entries(s.properties).filter(([k, p]) => s.required?.includes(k) || p.const !== undefined);
  return JSON.stringify(Object.fromEntries((must.length ? must : Object.entries(s.properties)).map(([k, p]) => [k, sample(p)])), null, 2);
}

/** The property every variant of a `oneOf` fixes to its own string constant (`decision`), if there is one. */
function discriminator(variants: JsonSchema[]): string | undefined {
  const first = variants[0]?.properties ?? {};
  return Object.keys(first).find((k) => {
    const values = variants.map((v) => v.properties?.[k]?.const);
    return values.every((c) => typeof c === 'string') && new Set(values).size === values.length && variants.every((v) => v.required?.includes(k));
  });
}

/** The form for a wait's answer, from its kind and its answer's JSON Schema. */
export function answerForm(wait: Pick<WaitInfo, 'kind' | 'schema'>): AnswerForm {
  const s = (wait.schema ?? {}) as JsonSchema;
  const variants = s.oneOf ?? s.anyOf;
  if (variants?.length && variants.every((v) => v.type === 'object' && v.properties)) {
    const key = discriminator(variants);
    if (key) {
      return {
        mode: 'choice',
        key,
        variants: variants.map((v) => {
          const rest: JsonSchema = {
            ...v,
            properties: Object.fromEntries(Object.entries(v.properties!).filter(([k]) => k !== key)),
            required: (v.required ?? []).filter((k) => k !== key),
          };
          const f = answerForm({ kind: 'budget', schema: rest });
          return { value: v.properties![key]!.const as string, form: f.mode === 'fields' ? f : { mode: 'json' as const, template: template(v) } };
        }),
      };
    }
  }
  const props = s.type === 'object' && s.properties ? Object.entries(s.properties) : undefined;
  if (!props) return { mode: 'json', template: template(s) };
  const required = new Set(s.required ?? []);
  const fields: AnswerField[] = [];
  for (const [name, p] of props) {
    const f = simpleField(name, p, required.has(name));
    if (!f) return { mode: 'json', template: template(s) };
    fields.push(f);
  }
  if (wait.kind === 'approval' && fields.some((f) => f.name === 'approved' && f.type === 'boolean')) {
    // Every other field is offered as optional; one the schema requires (besides `approved`) needs the JSON form.
    const rest = fields.filter((f) => f.name !== 'approved');
    if (rest.every((f) => !f.required)) return { mode: 'approval', fields: rest };
  }
  if (wait.kind === 'interrupt' && fields.length === 1 && fields[0]!.type === 'string') return { mode: 'text', field: fields[0]!.name };
  return { mode: 'fields', fields };
}

/**
 * The answer's payload from what was typed (strings, and booleans from checkboxes): empty optional
 * fields are left out, numbers parsed. An input that is not a number is an error for its field;
 * everything else (a negative amount, a comment too long) is the gateway's to judge.
 */
export function answerPayload(
  fields: readonly AnswerField[],
  values: Record<string, string | boolean>,
  extra: Record<string, unknown> = {},
): { payload: Record<string, unknown> } | { field: string; message: string } {
  const payload: Record<string, unknown> = { ...extra };
  for (const f of fields) {
    const v = values[f.name];
    if (f.type === 'boolean') {
      if (typeof v === 'boolean') payload[f.name] = v;
      else if (f.required) payload[f.name] = false;
      continue;
    }
    const text = typeof v === 'string' ? v : '';
    if (text.trim() === '' && !f.required) continue;
    if (f.type === 'number' || f.type === 'integer') {
      const n = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(n)) return { field: f.name, message: `${f.name}: not a number` };
      payload[f.name] = n;
    } else payload[f.name] = text;
  }
  return { payload };
}

/** The field of a form a gateway error names (`payload.amount` -> `amount`), if it is one of them. */
export function fieldOf(errorField: string | undefined, fields: readonly string[]): string | undefined {
  if (!errorField) return undefined;
  const name = errorField.replace(/^payload\.?/, '').split('.')[0] ?? '';
  return fields.includes(name) ? name : undefined;
}

/** `2 d 03 h`, `4 h 05 m`, `12 m 30 s`, `45 s` until `at` (epoch ms); `timed out` once past. */
export function timeLeft(at: number | undefined, now: number): string {
  if (at === undefined) return 'no timeout';
  const s = Math.floor((at - now) / 1000);
  if (s <= 0) return 'timed out';
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s >= 86_400) return `${Math.floor(s / 86_400)} d ${pad(Math.floor((s % 86_400) / 3600))} h`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} m`;
  if (s >= 60) return `${Math.floor(s / 60)} m ${pad(s % 60)} s`;
  return `${s} s`;
}
