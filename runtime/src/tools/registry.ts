import { z } from 'zod';
import { AoError, isAoError, zodIssuePath } from '@ao/graphs';
import type { ToolSpec } from '../llm/port.js';

/**
 * What calling a tool does to the world, which decides how it may be retried and replayed:
 * `pure` computes only; `read` reads outside state; `idempotent` writes, but the same
 * idempotency key writes once; `unsafe` writes and may write again if called again.
 */
export type EffectClass = 'pure' | 'read' | 'idempotent' | 'unsafe';

/** What a handler gets besides its arguments. */
export interface ToolContext {
  readonly runId: string;
  readonly nodeId: string;
  /** Stable across retries and replays of the same call; pass it to the provider. */
  readonly idempotencyKey: string;
  /** Aborts when the node times out or the run is cancelled. */
  readonly signal: AbortSignal;
}

/** A named tool: a zod input schema, its effect class, and the handler that runs it. */
export interface ToolDefinition<S extends z.ZodType = z.ZodType> {
  /** How graphs and models refer to the tool, e.g. `web_search`. */
  readonly name: string;
  /** Offered to the model with the schema; say what the tool does and when to use it. */
  readonly description: string;
  readonly input: S;
  /**
   * The JSON schema of the arguments as offered to the model, when the tool brings its own (MCP
   * tools do); otherwise it is generated from `input`. `input` still validates every call.
   */
  readonly parameters?: Record<string, unknown>;
  /**
   * The schema of the handler's result. Not enforced; it marks which parts of a result are secret
   * (`.meta({ secret: true })`): those are sealed in the vault and replaced by handles before the
   * result is journaled or shown to the model.
   */
  readonly output?: z.ZodType;
  /** The result's JSON schema, when the tool brings its own (an MCP tool's `outputSchema`); takes precedence over `output`. */
  readonly outputParameters?: Record<string, unknown>;
  readonly effect: EffectClass;
  /**
   * The effect class of one call, when it depends on the arguments (`http_request`: GET is `read`,
   * POST `unsafe`); `effect` otherwise. Called with the raw arguments; return `effect` if unsure.
   */
  effectOf?(args: unknown): EffectClass;
  /** Called only with arguments that passed `input`. */
  handler(args: z.output<S>, ctx: ToolContext): Promise<unknown>;
  /**
   * For `unsafe` tools: after a crash left a call in flight, tell whether the call with this
   * idempotency key took effect (`done`, with its result) or not (then it is safe to call again).
   * Without it, such a call's outcome is unknown and the run stops for a person to decide.
   */
  status?(args: z.output<S>, ctx: ToolContext): Promise<{ done: true; result: unknown } | { done: false }>;
}

/**
 * Identity function that infers the handler's argument type from the input schema.
 *
 * @example
 * ```ts
 * export const echo = defineTool({
 *   name: 'echo', description: 'Echo the text.', effect: 'pure',
 *   input: z.object({ text: z.string() }),
 *   handler: async ({ text }) => ({ text }),
 * });
 * ```
 */
export function defineTool<S extends z.ZodType>(def: ToolDefinition<S>): ToolDefinition<S> {
  return def;
}

/**
 * The tools a node may call, by name. Arguments are validated here, at the boundary, so a handler
 * never sees input that does not match its schema, and every failure leaves with a stable code.
 *
 * @example
 * ```ts
 * const tools = new ToolRegistry().register(webSearch);
 * const result = await tools.call('web_search', { query: 'actors' }, ctx);
 * ```
 */
export class ToolRegistry {
  private readonly tools = new Map<string, ToolDefinition>();

  /** @throws TypeError when the name is already taken: a wiring mistake, not a runtime failure. */
  register<S extends z.ZodType>(def: ToolDefinition<S>): this {
    if (this.tools.has(def.name)) throw new TypeError(`Tool "${def.name}" is already registered`);
    this.tools.set(def.name, def);
    return this;
  }

  has(name: string): boolean {
    return this.tools.has(name);
  }

  get(name: string): ToolDefinition | undefined {
    return this.tools.get(name);
  }

  /** The effect class of a call of `name` with these arguments (`effectOf`, else `effect`). */
  effectOf(name: string, rawArgs: unknown): EffectClass | undefined {
    const def = this.tools.get(name);
    return def ? (def.effectOf?.(rawArgs) ?? def.effect) : undefined;
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.tools.keys()];
  }

  /**
   * The given tools as a model sees them: name, description and the JSON schema of the input
   * (the input side of the schema, so fields with defaults are optional).
   * @throws AoError `AO_TOOL_NOT_FOUND` for an unknown name.
   */
  specs(names: readonly string[]): ToolSpec[] {
    return names.map((name) => {
      const def = this.require(name);
      return { name, description: def.description, parameters: parametersOf(def) };
    });
  }

  /**
   * Parse raw arguments with the tool's schema and return the parsed (defaulted) value.
   * @throws AoError `AO_TOOL_NOT_FOUND` (field `name`) or `AO_TOOL_ARGS_INVALID` (field = the
   * first failing argument, e.g. `amountCents`; `details.issues` lists every issue).
   */
  validate(name: string, rawArgs: unknown): unknown {
    const def = this.require(name);
    const r = def.input.safeParse(rawArgs);
    if (r.success) return r.data;
    const issues = r.error.issues.map((i) => ({ path: zodIssuePath(i) ?? '', message: i.message }));
    const field = zodIssuePath(r.error.issues[0]);
    throw new AoError('AO_TOOL_ARGS_INVALID', `Invalid arguments for tool "${name}": ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`, {
      ...(field === undefined ? {} : { field }),
      details: { tool: name, issues },
    });
  }

  /**
   * Validate, then run the handler. An AoError thrown by the handler passes through unchanged;
   * anything else becomes `AO_TOOL_FAILED` with the original as `cause`, retryable only for
   * `read` and `idempotent` tools (retrying an `unsafe` one could do the deed twice, and a
   * `pure` one would fail the same way again).
   */
  async call(name: string, rawArgs: unknown, ctx: ToolContext): Promise<unknown> {
    const args = this.validate(name, rawArgs);
    const def = this.require(name);
    try {
      return await def.handler(args, ctx);
    } catch (e) {
      if (isAoError(e)) throw e;
      const message = e instanceof Error ? e.message : String(e);
      throw new AoError('AO_TOOL_FAILED', `Tool "${name}" failed: ${message}`, {
        cause: e,
        details: { tool: name, effect: def.effect, aborted: ctx.signal.aborted },
        retryable: ['read', 'idempotent'].includes(def.effectOf?.(rawArgs) ?? def.effect),
      });
    }
  }

  private require(name: string): ToolDefinition {
    const def = this.tools.get(name);
    if (!def) {
      throw new AoError('AO_TOOL_NOT_FOUND', `No tool named "${name}" is registered`, {
        field: 'name',
        details: { tool: name, known: this.names() },
      });
    }
    return def;
  }
}

/**
 * A tool's parameters as JSON Schema, made once per definition (every call of an agent offers its
 * tools: converting the zod schema each time was about 1.4% of a pipeline step's CPU).
 */
const PARAMETERS = new WeakMap<object, Record<string, unknown>>();
function parametersOf(def: { input: z.ZodType; parameters?: Record<string, unknown> | undefined }): Record<string, unknown> {
  let p = PARAMETERS.get(def);
  if (!p) {
    const { $schema: _drop, ...parameters } = def.parameters ?? (z.toJSONSchema(def.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>);
    p = parameters;
    PARAMETERS.set(def, p);
  }
  return p;
}
