import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authGateway } from './auth-harness.js';
import type { AuthGateway } from './auth-harness.js';

describe('the access log', () => {
  const lines: Array<Record<string, unknown>> = [];
  let gw: AuthGateway;
  beforeAll(async () => {
    gw = await authGateway({ app: { logger: { level: 'info', stream: { write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) } } } });
  });
  afterAll(async () => gw.close());

  it('writes one line per request: method, URL, status and time, not an incoming line and a completed one', async () => {
    lines.length = 0;
    await gw.app.inject({ url: '/health' });
    await gw.app.inject({ url: '/runs/nope' });
    await gw.app.inject({ method: 'POST', url: '/runs', payload: { graph: 'nope' } });
    expect(lines.map((l) => l.msg)).toEqual(['GET /health 200', 'GET /runs/nope 404', 'POST /runs 400']);
    expect(lines.every((l) => typeof l.ms === 'number' && typeof l.status === 'number' && l.level === 30)).toBe(true);
  });
});
