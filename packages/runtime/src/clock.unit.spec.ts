import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from './clock.js';

describe('clocks', () => {
  it('the system clock reads the machine time', () => {
    const before = Date.now();
    const at = systemClock.now().getTime();
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
  });

  it('a manual clock stands still until set or advanced, and hands out copies', () => {
    const clock = new ManualClock('2030-01-01T00:00:00.000Z');
    const first = clock.now();
    first.setFullYear(1999);
    expect(clock.now().toISOString()).toBe('2030-01-01T00:00:00.000Z');
    clock.advance(1500);
    expect(clock.now().toISOString()).toBe('2030-01-01T00:00:01.500Z');
    clock.set('2031-02-03T04:05:06.000Z');
    expect(clock.now().toISOString()).toBe('2031-02-03T04:05:06.000Z');
  });
});
