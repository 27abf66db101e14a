import { describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';

describe('systemClock', () => {
  it('never calls a timer before now() reaches its time (Node may fire one a millisecond early)', async () => {
    const early: number[] = [];
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const ms = 1 + (i % 25);
        const due = systemClock.now() + ms;
        return new Promise<void>((resolve) =>
          systemClock.setTimer(ms, () => {
            if (systemClock.now() < due) early.push(due - systemClock.now());
            resolve();
          }),
        );
      }),
    );
    expect(early).toEqual([]);
  });

  it('a cancelled timer never fires, also one waiting out the rest of its time', async () => {
    let fired = 0;
    const cancel = systemClock.setTimer(5, () => fired++);
    cancel();
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toBe(0);
  });
});
