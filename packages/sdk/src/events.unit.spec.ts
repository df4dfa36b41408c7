import { describe, expect, it, vi } from 'vitest';
import { TypedEmitter } from './events.js';

describe('TypedEmitter', () => {
  it('delivers to listeners until they unsubscribe; once fires once', () => {
    const events = new TypedEmitter<{ ping: { n: number } }>();
    const got: number[] = [];
    const off = events.on('ping', (e) => got.push(e.n));
    events.once('ping', (e) => got.push(e.n * 10));
    events.emit('ping', { n: 1 });
    events.emit('ping', { n: 2 });
    off();
    events.emit('ping', { n: 3 });
    expect(got).toEqual([1, 10, 2]);
    expect(events.listenerCount('ping')).toBe(0);
  });

  it('a throwing listener does not stop the others or the emitter', async () => {
    const events = new TypedEmitter<{ ping: number }>();
    const reported: unknown[] = [];
    const g = globalThis as { reportError?: (e: unknown) => void };
    const saved = g.reportError;
    g.reportError = (e) => reported.push(e);
    try {
      const second = vi.fn();
      events.on('ping', () => {
        throw new Error('boom');
      });
      events.on('ping', second);
      expect(() => events.emit('ping', 1)).not.toThrow();
      expect(second).toHaveBeenCalledWith(1);
      expect(reported).toEqual([new Error('boom')]);
    } finally {
      g.reportError = saved;
    }
  });
});
