import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './timer.js';

describe('bil chat timer durations', () => {
  it('parses off and unit durations', () => {
    expect(parseDuration('off')).toBe(0);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('12h')).toBe(43_200_000);
    expect(parseDuration('7D')).toBe(604_800_000);
    expect(parseDuration('2w')).toBe(1_209_600_000);
  });

  it('refuses anything else as a usage error', () => {
    for (const bad of ['', 'soon', '5', '-1m', '1.5h', '5 minutes']) expect(() => parseDuration(bad), bad).toThrow(/not a duration/);
  });

  it('formats back, largest units first', () => {
    expect(formatDuration(0)).toBe('off');
    expect(formatDuration(90_000)).toBe('1m 30s');
    expect(formatDuration(604_800_000)).toBe('1w');
  });
});
