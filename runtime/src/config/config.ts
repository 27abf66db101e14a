import { resolve } from 'node:path';
import { z } from 'zod';
import { AoError, zodIssuePath } from '@ao/graphs';

/**
 * Every environment variable the runtime reads, validated once at start-up. README's
 * configuration table lists the same variables.
 */
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
  AO_NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('local'),
  AO_LLM_LATENCY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  AO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Modules (comma-separated paths) exporting `graphs` and/or `tools` to register at start-up. */
  AO_GRAPHS: z.string().optional(),
  /** How long a run's lease lasts without renewal (ms). */
  AO_LEASE_MS: z.coerce.number().int().min(100).max(3_600_000).default(15_000),
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
