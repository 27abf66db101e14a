import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('config: the cluster knobs', () => {
  it('reads AO_NODE_TASKS and AO_NATS_ACK_WAIT_MS, with their defaults', () => {
    expect(loadConfig({})).toMatchObject({ AO_NODE_TASKS: 32, AO_NATS_ACK_WAIT_MS: 30_000 });
    expect(loadConfig({ AO_NODE_TASKS: '4', AO_NATS_ACK_WAIT_MS: '5000' })).toMatchObject({ AO_NODE_TASKS: 4, AO_NATS_ACK_WAIT_MS: 5_000 });
  });

  it('refuses a bad value with AO_CONFIG_INVALID naming the variable', () => {
    for (const [name, value] of [
      ['AO_NODE_TASKS', '0'],
      ['AO_NODE_TASKS', 'many'],
      ['AO_NATS_ACK_WAIT_MS', '10'],
    ] as const) {
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).toThrow(expect.objectContaining({ code: 'AO_CONFIG_INVALID', field: name }));
    }
  });
});
