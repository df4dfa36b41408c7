import { describe, expect, it } from 'vitest';
import { WeightedLru } from './weighted-lru.js';

describe('WeightedLru', () => {
  it('keeps the total weight under its bound, evicting the least recently used first', () => {
    const lru = new WeightedLru<string, number>(10);
    lru.set('a', 1, 4);
    lru.set('b', 2, 4);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3, 4); // 12 > 10: b goes
    expect([lru.get('a'), lru.get('b'), lru.get('c')]).toEqual([1, undefined, 3]);
    expect(lru.weight).toBe(8);
    lru.set('a', 9, 2); // replaced: its old weight no longer counts
    expect([lru.get('a'), lru.weight, lru.size]).toEqual([9, 6, 2]);
    lru.set('huge', 0, 11); // heavier than the bound: not kept, nothing evicted
    expect([lru.get('huge'), lru.size]).toEqual([undefined, 2]);
    lru.delete('c');
    expect([lru.size, lru.weight]).toEqual([1, 2]);
  });
});
