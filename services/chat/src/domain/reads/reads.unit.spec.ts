import { describe, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { readsDecider, type ReadsEvent } from './reads.js';

const spec = deciderSpec(readsDecider);
const now = '2026-11-26T10:00:00.000Z';
const read = (lastReadSeq: number): ReadsEvent => ({ type: 'MessagesRead', data: { chatId: 'c', userId: 'u', lastReadSeq, occurredAt: now } });
const mark = (seq: number, lastSeq = 10) => ({ type: 'MarkRead' as const, chatId: 'c', userId: 'u', seq, lastSeq, now });

describe('read marker decider', () => {
  it('moves forward', () => spec.given(read(3)).when(mark(5)).then([read(5)]));
  it('never moves backwards, and an equal mark changes nothing', () => {
    spec.given(read(5)).when(mark(3)).then([]);
    spec.given(read(5)).when(mark(5)).then([]);
  });
  it('is clamped to the last sequence number', () => spec.given().when(mark(99, 10)).then([read(10)]));
  it('refuses a negative sequence number', () => spec.given().when(mark(-1)).thenThrows('invalid_seq'));
});
