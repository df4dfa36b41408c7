import { describe, expect, it } from 'vitest';
import { fmt, percentile, ratio, renderTable, summarise } from './stats.js';

describe('stats', () => {
  it('percentiles by nearest rank', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    expect(summarise(v)).toEqual({ count: 100, p50: 50, p99: 99, max: 100 });
  });

  it('ratios and numbers', () => {
    expect(ratio(150, 600)).toBe('0.25x');
    expect(ratio(30, 10)).toBe('3.0x');
    expect(ratio(NaN, 10)).toBe('—');
    expect(ratio(1, 0)).toBe('—');
    expect(fmt(3.14159, 'ms')).toBe('3.14 ms');
    expect(fmt(1234.5)).toBe('1235');
    expect(fmt(undefined)).toBe('—');
  });

  it('renders a markdown table', () => {
    const md = renderTable({ name: 'x', title: 'X', rows: [{ label: 'rate', project: '1', raw: '2', ratio: '0.50x' }], notes: ['n'] });
    expect(md).toBe('### X\n\n|  | project | raw | ratio |\n|---|---|---|---|\n| rate | 1 | 2 | 0.50x |\n\n- n');
  });
});
