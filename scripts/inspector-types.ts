/**
 * The inspector's types of the gateway's HTTP and stream shapes, generated from the zod schemas
 * that validate and serialise them (`gateway/src/http/views.ts`, `gateway/src/stream/frames.ts`),
 * so the two cannot drift: `scripts/inspector-types.test.ts` fails when the file is stale.
 *
 *   npx tsx scripts/inspector-types.ts      # writes inspector/src/lib/api/generated.ts
 *
 * Each schema goes through zod's `z.toJSONSchema` (the shapes as the gateway sends them, `io:
 * 'output'`), then into a TypeScript type: only types, so the inspector's bundle gets no code.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { BudgetSchema } from '@ao/graphs';
import { EnvelopeSchema, ErrorInfoSchema, NodeStateSchema, PAYLOADS, ReplayInfoSchema, UsageSchema, WaitInfoSchema } from '@ao/runtime';
import {
  CheckpointSummaryView,
  ErrorView,
  GraphDetailView,
  GraphView,
  RunDiffView,
  RunSummary,
  RunView,
  SignalAccepted,
  UsageView,
} from '../gateway/src/http/views.js';
import { DeltaFrame, StreamFrame } from '../gateway/src/stream/frames.js';

export const GENERATED = join(import.meta.dirname, '..', 'inspector', 'src', 'lib', 'api', 'generated.ts');

/** What is generated, by the name the inspector reads it under, with the schema's place in the gateway. */
const TYPES: ReadonlyArray<[string, z.ZodType, string]> = [
  ['RunSummary', RunSummary, 'gateway/src/http/views.ts RunSummary (GET /runs)'],
  ['RunView', RunView, 'gateway/src/http/views.ts RunView (GET /runs/:id)'],
  ['UsageView', UsageView, 'gateway/src/http/views.ts UsageView (GET /runs/:id/usage)'],
  ['RunDiffView', RunDiffView, 'gateway/src/http/views.ts RunDiffView (GET /runs/:a/diff/:b)'],
  ['SignalAccepted', SignalAccepted, 'gateway/src/http/views.ts SignalAccepted (202 to POST /runs/:id/signal)'],
  ['CheckpointSummary', CheckpointSummaryView, 'gateway/src/http/views.ts CheckpointSummaryView (GET /runs/:id/checkpoints)'],
  ['GraphView', GraphView, 'gateway/src/http/views.ts GraphView (GET /graphs)'],
  ['GraphDetail', GraphDetailView, 'gateway/src/http/views.ts GraphDetailView (GET /graphs/:name)'],
  ['ApiErrorBody', ErrorView, 'gateway/src/http/views.ts ErrorView (every 4xx and 5xx)'],
  ['StreamFrame', StreamFrame, 'gateway/src/stream/frames.ts StreamFrame (the WebSocket streams)'],
  ['DeltaFrame', DeltaFrame, 'gateway/src/stream/frames.ts DeltaFrame'],
  ['Envelope', EnvelopeSchema, 'runtime/src/envelope/envelope.ts EnvelopeSchema'],
  ['EnvelopePayloads', z.object(PAYLOADS), "runtime/src/envelope/payloads.ts PAYLOADS (each envelope type's payload)"],
  ['WaitInfo', WaitInfoSchema, 'runtime/src/store/records.ts WaitInfoSchema'],
  ['NodeState', NodeStateSchema, 'runtime/src/store/records.ts NodeStateSchema'],
  ['Usage', UsageSchema, 'runtime/src/store/records.ts UsageSchema'],
  ['ErrorInfo', ErrorInfoSchema, 'runtime/src/store/records.ts ErrorInfoSchema'],
  ['ReplayInfo', ReplayInfoSchema, 'runtime/src/store/records.ts ReplayInfoSchema'],
  ['Budget', BudgetSchema, 'graphs/src/types.ts BudgetSchema'],
];

type Json = { [k: string]: unknown };

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (k: string) => (IDENT.test(k) ? k : JSON.stringify(k));
const pad = (depth: number) => '  '.repeat(depth);

function doc(description: unknown, depth: number): string {
  if (typeof description !== 'string' || !description.trim()) return '';
  const lines = description.trim().split('\n');
  if (lines.length === 1) return `${pad(depth)}/** ${lines[0]!.replace(/\*\//g, '*\\/')} */\n`;
  return `${pad(depth)}/**\n${lines.map((l) => `${pad(depth)} * ${l.replace(/\*\//g, '*\\/')}`.trimEnd()).join('\n')}\n${pad(depth)} */\n`;
}

const union = (parts: string[]): string => {
  const unique = [...new Set(parts)];
  return unique.length === 1 ? unique[0]! : unique.map((p) => (p.includes('=>') ? `(${p})` : p)).join(' | ');
};

/** A JSON Schema (the subset zod writes) as a TypeScript type, at `depth` for object literals. */
export function typeOf(s: Json, depth = 0): string {
  if (typeof s.$ref === 'string') return s.$ref;
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return union(s.enum.map((v) => JSON.stringify(v)));
  const alts = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (alts) return union(alts.map((a) => typeOf(a, depth)));
  if (Array.isArray(s.allOf)) return (s.allOf as Json[]).map((a) => typeOf(a, depth)).join(' & ');
  if (Array.isArray(s.type)) return union((s.type as string[]).map((t) => typeOf({ ...s, type: t }, depth)));
  switch (s.type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      if (Array.isArray(s.prefixItems)) return `[${(s.prefixItems as Json[]).map((i) => typeOf(i, depth)).join(', ')}]`;
      const item = s.items ? typeOf(s.items as Json, depth) : 'unknown';
      return /[|& ]/.test(item) ? `Array<${item}>` : `${item}[]`;
    }
    case 'object':
      return objectType(s, depth);
    default:
      return 'unknown';
  }
}

function objectType(s: Json, depth: number): string {
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  const extra = s.additionalProperties;
  const restAt = (d: number) => (extra && typeof extra === 'object' ? typeOf(extra as Json, d) : extra === true ? 'unknown' : undefined);
  if (!Object.keys(props).length) {
    const rest = restAt(depth);
    return rest !== undefined ? `Record<string, ${rest}>` : '{}';
  }
  const rest = restAt(depth + 1);
  const lines = Object.entries(props).map(
    ([k, v]) => `${doc(v.description, depth + 1)}${pad(depth + 1)}${key(k)}${required.has(k) ? '' : '?'}: ${typeOf(v, depth + 1)};`,
  );
  if (rest !== undefined) lines.push(`${pad(depth + 1)}[key: string]: ${rest === 'unknown' ? 'unknown' : `${rest} | undefined`};`);
  return `{\n${lines.join('\n')}\n${pad(depth)}}`;
}

/** The generated file's text. */
export function renderInspectorTypes(): string {
  const out = [
    "// Generated by scripts/inspector-types.ts from the gateway's zod schemas: do not edit.",
    '// `npx tsx scripts/inspector-types.ts` writes it again; scripts/inspector-types.test.ts checks it is current.',
    '/* eslint-disable */',
    '',
  ];
  // One registry: a schema that is another's part (a run's `usage`, a frame's `envelope`) is
  // referred to by its name rather than written out again.
  const registry = z.registry<{ id: string }>();
  for (const [name, schema] of TYPES) registry.add(schema, { id: name });
  const { schemas } = z.toJSONSchema(registry, { io: 'output', unrepresentable: 'any', cycles: 'throw', uri: (id) => id }) as { schemas: Record<string, Json> };
  for (const [name, , from] of TYPES) {
    const json = schemas[name]!;
    out.push(`${doc(`${typeof json.description === 'string' ? `${json.description}\n\n` : ''}From ${from}.`, 0)}export type ${name} = ${typeOf(json)};`, '');
  }
  out.push(
    doc(
      "An envelope of a known type, its payload typed by its schema: narrow it on `type`. The inspector gets envelopes over HTTP unchecked (the gateway checked them where they entered); an old log's may not fit.",
      0,
    ) +
      'export type TypedEnvelope = { [T in keyof EnvelopePayloads]: Omit<Envelope, "type" | "payload"> & { type: T; payload: EnvelopePayloads[T] } }[keyof EnvelopePayloads];',
    '',
  );
  return out.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) writeFileSync(GENERATED, renderInspectorTypes());
