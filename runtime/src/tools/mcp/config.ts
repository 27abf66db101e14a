import { z } from 'zod';

const EffectClassSchema = z.enum(['pure', 'read', 'idempotent', 'unsafe']);

const common = {
  /** Registered names are `<prefix><tool>`; default `<server name>__`. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]{0,40}$/)
    .optional(),
  /** Register only these tools of the server (its own names); all when left out. */
  tools: z.array(z.string().min(1)).optional(),
  /**
   * Effect class of every tool of the server, or per tool (`effects`). Without either, the tool's
   * MCP annotations decide: `readOnlyHint` is `read`, `idempotentHint` is `idempotent`, else `unsafe`.
   */
  effect: EffectClassSchema.optional(),
  effects: z.record(z.string(), EffectClassSchema).optional(),
  /** Longest a tool call may take (ms); a node's timeout or the run's stop aborts it sooner. */
  timeoutMs: z.number().int().positive().max(3_600_000).default(60_000),
  /** Longest connecting and listing the tools may take (ms). */
  connectTimeoutMs: z.number().int().positive().max(600_000).default(30_000),
};

/** An MCP server started as a child process, spoken to over its stdin/stdout. */
export const McpStdioServerSchema = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  ...common,
});

/** An MCP server reached over Streamable HTTP. */
export const McpHttpServerSchema = z.strictObject({
  url: z.url(),
  headers: z.record(z.string(), z.string()).optional(),
  ...common,
});

export const McpServerSchema = z.union([McpStdioServerSchema, McpHttpServerSchema]);
export type McpServerConfig = z.infer<typeof McpServerSchema>;
export const McpServersSchema = z.record(z.string().regex(/^[A-Za-z0-9_-]{1,40}$/), McpServerSchema);
export type McpServersConfig = z.infer<typeof McpServersSchema>;
