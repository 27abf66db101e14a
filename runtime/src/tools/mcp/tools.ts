import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { EffectClass, ToolDefinition } from '../registry.js';
import type { McpServerConfig } from './config.js';
import type { McpConnection, McpTool } from './connection.js';
import { hasSecretMarks } from '../../secrets/marks.js';

/** The longest text of a tool result kept in the event log (the model sees at most 4000 characters anyway). */
const MAX_TEXT = 16_000;

/** Our name of a server's tool: `<prefix><tool>`, in the characters model APIs accept, at most 64. */
export function mcpToolName(server: string, tool: string, prefix = `${server}__`): string {
  return `${prefix}${tool}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

/** The effect class of a tool: configured, or read from its MCP annotations (unsafe unless they say otherwise). */
export function effectOf(t: McpTool, c: Pick<McpServerConfig, 'effect' | 'effects'>): EffectClass {
  const configured = c.effects?.[t.name] ?? c.effect;
  if (configured) return configured;
  if (t.annotations?.readOnlyHint) return 'read';
  if (t.annotations?.idempotentHint) return 'idempotent';
  return 'unsafe';
}

/**
 * A zod validator from the tool's JSON schema, so bad arguments from a model are refused before
 * they reach the server (with the same AO_TOOL_ARGS_INVALID as local tools). A schema zod cannot
 * read is checked as "an object" only; the server validates the rest.
 */
function validatorOf(schema: McpTool['inputSchema']): z.ZodType {
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    return z.record(z.string(), z.unknown());
  }
}

/**
 * What a call returned, kept bounded for the log: text as is (cut at 16k), binary content by
 * type and size only, and the structured content when the server gives one.
 */
export function resultOf(r: CallToolResult): { content: unknown[]; structuredContent?: unknown } {
  const content = (r.content ?? []).map((c) => {
    switch (c.type) {
      case 'text':
        return { type: 'text', text: c.text.length > MAX_TEXT ? `${c.text.slice(0, MAX_TEXT)}…` : c.text };
      case 'image':
      case 'audio':
        return { type: c.type, mimeType: c.mimeType, bytes: Math.floor((c.data.length * 3) / 4) };
      case 'resource': {
        const res = c.resource as { uri: string; mimeType?: string; text?: string };
        return {
          type: 'resource',
          uri: res.uri,
          ...(res.mimeType ? { mimeType: res.mimeType } : {}),
          ...(typeof res.text === 'string' ? { text: res.text.slice(0, MAX_TEXT) } : {}),
        };
      }
      default:
        return c;
    }
  });
  return { content, ...(r.structuredContent ? { structuredContent: r.structuredContent } : {}) };
}

/**
 * Our result's schema when the tool's `outputSchema` marks secrets (`"x-secret": true`, or
 * `"writeOnly": true`): the marks apply to `structuredContent`, the part that schema describes.
 */
function outputOf(t: McpTool): Record<string, unknown> | undefined {
  if (!t.outputSchema || !hasSecretMarks(t.outputSchema)) return undefined;
  return { type: 'object', properties: { structuredContent: t.outputSchema } };
}

/**
 * The server's tools as our tool definitions: named with the prefix, offered to models with the
 * server's own input schema, validated by it, classified by effect, and called through the
 * connection with the call's abort signal, the configured timeout and the idempotency key (as
 * `_meta`). A result the server marks `isError` is a failed call (AO_TOOL_FAILED). Secret marks
 * in an input schema or output schema are honoured (see `outputOf`); a tool with secret outputs
 * loses its text content when it gives structured content, because the text is, by the MCP spec,
 * the same JSON written out, secrets included.
 */
export function mcpTools(conn: McpConnection, config: McpServerConfig): ToolDefinition[] {
  const allowed = config.tools ? new Set(config.tools) : undefined;
  return conn
    .tools()
    .filter((t) => !allowed || allowed.has(t.name))
    .map((t): ToolDefinition => {
      const { $schema: _drop, ...parameters } = t.inputSchema as Record<string, unknown>;
      const outputParameters = outputOf(t);
      return {
        name: mcpToolName(conn.name, t.name, config.prefix),
        description: t.description ?? `${t.name} (MCP server ${conn.name})`,
        input: validatorOf(t.inputSchema),
        parameters,
        ...(outputParameters ? { outputParameters } : {}),
        effect: effectOf(t, config),
        async handler(args, ctx) {
          const res = await conn.call(t.name, (args ?? {}) as Record<string, unknown>, {
            signal: ctx.signal,
            timeoutMs: config.timeoutMs,
            meta: { 'agent-orchestrator/idempotencyKey': ctx.idempotencyKey, 'agent-orchestrator/runId': ctx.runId },
          });
          const out = resultOf(res);
          if (res.isError) {
            const text = out.content
              .map((c) => (c as { text?: string }).text ?? '')
              .filter(Boolean)
              .join('\n')
              .slice(0, 2000);
            throw new AoError('AO_TOOL_FAILED', `MCP tool ${t.name} (server ${conn.name}) failed: ${text || 'isError without text'}`, {
              details: { server: conn.name, tool: t.name, result: out },
            });
          }
          if (outputParameters && out.structuredContent !== undefined)
            return { content: out.content.filter((c) => (c as { type?: string }).type !== 'text'), structuredContent: out.structuredContent };
          return out;
        },
      };
    });
}
