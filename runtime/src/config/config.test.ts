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

describe('config: payload limits', () => {
  it('reads AO_MAX_PAYLOAD_BYTES and AO_CONTENT_MIN_BYTES, with their defaults, and refuses bad ones with AO_CONFIG_INVALID', () => {
    expect(loadConfig({})).toMatchObject({ AO_MAX_PAYLOAD_BYTES: 8 * 1024 * 1024, AO_CONTENT_MIN_BYTES: 65_536 });
    expect(loadConfig({ AO_MAX_PAYLOAD_BYTES: '2048', AO_CONTENT_MIN_BYTES: '1024' })).toMatchObject({
      AO_MAX_PAYLOAD_BYTES: 2048,
      AO_CONTENT_MIN_BYTES: 1024,
    });
    for (const [name, value] of [
      ['AO_MAX_PAYLOAD_BYTES', '10'],
      ['AO_MAX_PAYLOAD_BYTES', 'big'],
      ['AO_CONTENT_MIN_BYTES', '16'],
    ] as const) {
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).toThrow(expect.objectContaining({ code: 'AO_CONFIG_INVALID', field: name }));
    }
  });
});
