import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CannotDecryptError } from './errors.js';
import { ReplayGuard } from './replay.js';
import { uuid } from './testing/fixtures.js';

const chat = uuid(1);
const dev = uuid(2);
const h = (counter: number, id = uuid(1000 + counter), sender = dev, chat_id = chat) => ({ chat_id, message_id: id, sender_device_id: sender, counter });

describe('replay detection and gaps (property 4)', () => {
  it('rejects the same message id, and the same (sender, counter) under a new id', () => {
    const g = new ReplayGuard();
    g.accept(h(1));
    expect(() => g.accept(h(1))).toThrow(CannotDecryptError);
    expect(() => g.accept(h(1, uuid(9999)))).toThrow(CannotDecryptError);
    expect(() => g.accept(h(2, uuid(1001)))).toThrow(CannotDecryptError); // id of counter 1 reused
    expect(g.isReplay(h(2))).toBe(false);
  });

  it('reports skipped counters, accepts them late once, and keeps senders and chats apart', () => {
    const g = new ReplayGuard();
    g.accept(h(1));
    expect(g.accept(h(5)).gap).toEqual({ chat_id: chat, sender_device_id: dev, from: 2, to: 4 });
    g.accept(h(3));
    expect(g.gaps().counters).toEqual([
      { chat_id: chat, sender_device_id: dev, from: 2, to: 2 },
      { chat_id: chat, sender_device_id: dev, from: 4, to: 4 },
    ]);
    expect(() => g.accept(h(3, uuid(77)))).toThrow(CannotDecryptError);
    g.accept(h(1, uuid(5001), uuid(3)));
    g.accept(h(1, uuid(5002), dev, uuid(4)));
    expect(g.gaps(uuid(4)).counters).toEqual([]);
  });

  it('tracks the server seq for catch-up', () => {
    const g = new ReplayGuard();
    g.noteSeq(chat, 1);
    expect(g.noteSeq(chat, 4).gap).toEqual({ chat_id: chat, from: 2, to: 3 });
    g.noteSeq(chat, 2);
    expect(g.gaps(chat).seqs).toEqual([{ chat_id: chat, from: 3, to: 3 }]);
  });

  it('survives a snapshot round trip', () => {
    const g = new ReplayGuard();
    g.accept(h(1));
    g.accept(h(4));
    const again = new ReplayGuard(JSON.parse(JSON.stringify(g.snapshot())));
    expect(again.isReplay(h(1))).toBe(true);
    expect(again.isReplay(h(2))).toBe(false);
    expect(again.gaps()).toEqual(g.gaps());
  });

  it('any delivery order with duplicates: each counter accepted exactly once, no gaps left (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 80 }), (counters) => {
        const g = new ReplayGuard();
        const accepted = new Set<number>();
        for (const c of counters) {
          if (accepted.has(c)) expect(() => g.accept(h(c))).toThrow(CannotDecryptError);
          else {
            g.accept(h(c));
            accepted.add(c);
          }
        }
        const max = Math.max(...accepted);
        const missing = g.gaps().counters.flatMap((r) => Array.from({ length: r.to - r.from + 1 }, (_, i) => r.from + i));
        expect(missing.sort((a, b) => a - b)).toEqual(Array.from({ length: max }, (_, i) => i + 1).filter((c) => !accepted.has(c)));
      }),
      { numRuns: 200 },
    );
  });
});
