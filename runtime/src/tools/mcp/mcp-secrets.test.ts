import { describe, expect, it } from 'vitest';
import { redactArgs, sealResult, toolSecrets } from '../../secrets/marks.js';
import type { McpConnection } from './connection.js';
import { mcpTools } from './tools.js';

/** A connection with one tool whose schemas mark secrets the JSON-schema way. */
const conn = {
  name: 'vault',
  tools: () => [
    {
      name: 'login',
      inputSchema: { type: 'object', properties: { user: { type: 'string' }, password: { type: 'string', writeOnly: true } } },
      outputSchema: { type: 'object', properties: { session: { type: 'string', 'x-secret': true }, user: { type: 'string' } } },
    },
  ],
  call: async () => ({ content: [{ type: 'text', text: '{"session":"s3cr3t","user":"ann"}' }], structuredContent: { session: 's3cr3t', user: 'ann' } }),
} as unknown as McpConnection;

describe('MCP tools: secret marks in their JSON schemas', () => {
  it('honours writeOnly / x-secret in inputSchema and outputSchema, and drops the text copy of a structured result with secrets', async () => {
    const [login] = mcpTools(conn, { command: 'x', args: [], prefix: '' } as never);
    const sec = toolSecrets(login);
    expect(redactArgs(sec, { user: 'ann', password: 'pw' })).toEqual({ user: 'ann', password: '[redacted]' });
    const result = await login!.handler(
      { user: 'ann', password: 'pw' },
      { runId: 'r', nodeId: 'n', idempotencyKey: 'k', signal: new AbortController().signal },
    );
    const { shown, sealed } = sealResult(sec, 'n/1', result);
    expect(sealed.map((s) => s.value)).toEqual(['s3cr3t']);
    expect(JSON.stringify(shown)).not.toContain('s3cr3t');
    expect(shown).toMatchObject({ content: [], structuredContent: { user: 'ann' } });
  });
});
