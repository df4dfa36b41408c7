import { describe, expect, it } from 'vitest';
import { chunkLines, parseModelSummary } from './llm.js';

describe('model summariser helpers', () => {
  it('splits long transcripts into parts at line boundaries', () => {
    const lines = Array.from({ length: 10 }, (_, i) => `Speaker ${i}: ${'x'.repeat(40)}`);
    const parts = chunkLines(lines, 120);
    expect(parts.length).toBe(5);
    expect(parts.join('\n')).toBe(lines.join('\n'));
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(120);
  });

  it('cuts a single line longer than a part', () => {
    expect(chunkLines(['a'.repeat(250)], 100).map((p) => p.length)).toEqual([100, 100, 50]);
  });

  it('reads a JSON answer, also inside a code fence, and normalises it', () => {
    const s = parseModelSummary('Here:\n```json\n{"topic":"Launch","key_points":["A"," B "],"actions":[{"owner":"Bob","action":"Fix"},"Ship it"],"language":"en"}\n```');
    expect(s).toEqual({ topic: 'Launch', keyPoints: ['A', 'B'], actions: [{ owner: 'Bob', action: 'Fix' }, { owner: '', action: 'Ship it' }], language: 'en' });
  });

  it('refuses an answer that is not the summary JSON, without quoting it', () => {
    for (const bad of ['', 'no json here SECRET', '{"key_points":[]}', '{broken SECRET']) {
      let message = '';
      try {
        parseModelSummary(bad);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/did not answer/);
      expect(message).not.toContain('SECRET');
    }
  });
});
