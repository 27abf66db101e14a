import { resolve } from 'node:path';
import { z } from 'zod';
import { AoError, zodIssuePath } from '@ao/graphs';
import { LlmProfilesSchema } from '../llm/profiles.js';
import { McpServersSchema } from '../tools/mcp/config.js';
import { parseAllowList } from '../tools/http/address.js';
import { parseSecretKey } from '../secrets/key.js';
import { NODE_ID_PATTERN } from '../identity/node-id.js';

/**
 * Every environment variable the runtime reads, validated once at start-up. README's
 * configuration table lists the same variables.
 */
/** An unset variable and an empty one mean the same: not configured. */
const optionalString = z
  .string()
  .optional()
  .transform((s) => (s ? s : undefined));

/** A JSON value in a variable, checked with `schema`; unset or empty is `undefined`. */
function jsonVar<T extends z.ZodType>(schema: T, what: string) {
  return z
    .string()
    .optional()
    .transform((s, ctx): z.output<T> | undefined => {
      if (!s) return undefined;
      let v: unknown;
      try {
        v = JSON.parse(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `not JSON: ${(e as Error).message.slice(0, 200)}` });
        return z.NEVER;
      }
      const r = schema.safeParse(v);
      if (r.success) return r.data;
      const i = r.error.issues[0];
      ctx.addIssue({ code: 'custom', message: `not ${what}: ${i?.path.map(String).join('.') || '(root)'}: ${i?.message}` });
      return z.NEVER;
    });
}

const PricesSchema = z.record(z.string().min(1), z.strictObject({ input: z.number().min(0), output: z.number().min(0) }));

export const ConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  AO_DATA_DIR: z.string().min(1).default('.ao'),
  /**
   * Where the embedded store's template is kept (a data directory made and migrated once, copied
   * for each new AO_DATA_DIR). Unset: `$XDG_CACHE_HOME/ao`, else `~/.cache/ao`.
   */
  AO_CACHE_DIR: optionalString,
  /** NATS server(s) with JetStream; set: the JetStream bus and cluster work distribution; unset: the in-process bus. */
  NATS_URL: optionalString,
  /** Prefix of the JetStream streams, consumers, subjects and KV bucket (one cluster per prefix). */
  AO_NATS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, '1-32 letters, digits, _ or -')
    .default('ao'),
  /** How long a pulled work item (a run start, a node task) may go unacknowledged before it is handed to another node (a node died); set when the queues are first created. */
  AO_NATS_ACK_WAIT_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(30_000),
  /** Node tasks (node executions, swarm branches) a runtime node runs at once in a cluster. */
  AO_NODE_TASKS: z.coerce.number().int().min(1).max(1_000).default(32),
  /**
   * This runtime node's id (runs it hosts carry it as owner). Unset: one unique to the process,
   * kept in AO_DATA_DIR/node-id with the embedded store (see `resolveNodeId`).
   */
  AO_NODE_ID: optionalString.pipe(z.string().regex(NODE_ID_PATTERN, 'letters, digits, _ . or -, at most 128').optional()),
  AO_LLM_LATENCY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  AO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Modules (comma-separated paths) exporting `graphs` and/or `tools` to register at start-up. */
  AO_GRAPHS: z.string().optional(),
  /** How long a run's lease lasts without renewal (ms). */
  AO_LEASE_MS: z.coerce.number().int().min(100).max(3_600_000).default(15_000),
  /** The largest payload an envelope may carry (bytes of JSON): past it the step fails with AO_PAYLOAD_TOO_LARGE instead of bloating the log. */
  AO_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(1_073_741_824)
    .default(8 * 1024 * 1024),
  /** Strings at least this long (a large tool result, input or answer) are stored once per run, by reference, however often the run repeats them. */
  AO_CONTENT_MIN_BYTES: z.coerce.number().int().min(256).max(1_073_741_824).default(65_536),
  /** Price per million input/output tokens by model, as JSON: {"gpt-4o":{"input":2.5,"output":10},"*":{...}}. */
  AO_PRICES: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return {};
      try {
        return PricesSchema.parse(JSON.parse(s));
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `not a price table: ${(e as Error).message.slice(0, 200)}` });
        return z.NEVER;
      }
    }),
  /**
   * LLM profiles by name, as JSON: {"default":{"provider":"openai","baseUrl":"http://localhost:11434/v1","model":"llama3.2"},
   * "claude":{"provider":"anthropic","model":"claude-sonnet-4-5","apiKeyEnv":"ANTHROPIC_API_KEY"}}. A node's `llm` names one.
   */
  AO_LLM_PROFILES: jsonVar(LlmProfilesSchema, 'LLM profiles'),
  /** Without AO_LLM_PROFILES.default: an OpenAI-compatible endpoint becomes the default profile. */
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  /** Without AO_LLM_PROFILES.default and OPENAI_*: Anthropic becomes the default profile. */
  ANTHROPIC_API_KEY: optionalString,
  ANTHROPIC_BASE_URL: optionalString.pipe(z.url().optional()),
  /** The model of the default profile made from OPENAI_* or ANTHROPIC_* (e.g. llama3.2 for Ollama). */
  AO_LLM_MODEL: optionalString,
  /** Longest one attempt of an LLM call may take (ms), for profiles that do not set timeoutMs. */
  AO_LLM_TIMEOUT_MS: z.coerce.number().int().positive().max(3_600_000).optional(),
  /** Retries of an LLM call on 429/5xx/timeouts, for profiles that do not set maxRetries. */
  AO_LLM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).optional(),
  /**
   * MCP servers whose tools to register, as JSON by server name: {"fs":{"command":"npx","args":["-y",
   * "@modelcontextprotocol/server-filesystem","/data"]},"search":{"url":"https://mcp.example.com/mcp"}}.
   */
  AO_MCP_SERVERS: jsonVar(McpServersSchema, 'MCP servers'),
  /**
   * 32 random bytes in base64 (`openssl rand -base64 32`): the key secret tool results are
   * encrypted with. Unset with the embedded store: one is generated into AO_DATA_DIR/secret.key.
   * Unset with Postgres: secret parts of tool results are dropped, not kept (AO_SECRET_KEY_MISSING).
   */
  AO_SECRET_KEY: optionalString.superRefine((s, ctx) => {
    if (s === undefined) return;
    try {
      parseSecretKey(s);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }),
  /** Hosts, IP addresses and CIDRs (comma-separated) the http_request tool may reach although they are not public. */
  AO_HTTP_TOOL_ALLOW: optionalString.superRefine((s, ctx) => {
    try {
      parseAllowList(s);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }),
  /** Fault injection for crash tests: SIGKILL this process after it committed this many events. */
  AO_FAULT_KILL_AFTER_EVENTS: z.coerce.number().int().positive().optional(),
});
export type Config = z.infer<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const r = ConfigSchema.safeParse(env);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = zodIssuePath(issue);
    throw new AoError('AO_CONFIG_INVALID', `invalid configuration: ${field}: ${issue?.message}`, { ...(field ? { field } : {}) });
  }
  return { ...r.data, AO_DATA_DIR: resolve(cwd, r.data.AO_DATA_DIR) };
}
