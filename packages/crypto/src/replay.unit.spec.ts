import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CannotDecryptError } from './errors.js';
import { ReplayGuard, envelopeDigest } from './replay.js';
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

describe('re-read vs replay (docs/protocol.md, "Replay and gaps")', () => {
  const envelope = { header: { v: 2, chat_id: chat, message_id: uuid(1001), counter: 1 }, ciphertext: 'AAAA', signature: 'BBBB' };
  const at = async (seq: number, e: unknown = envelope, chat_id = chat, message_id = uuid(1001)) => ({
    chat_id,
    message_id,
    seq,
    envelope_sha256: await envelopeDigest(e),
  });

  it('the same chat, seq, message id and envelope is a re-read; anything else with that id is a replay', async () => {
    const g = new ReplayGuard();
    const first = await at(7);
    expect(g.classify(first)).toBe('new');
    g.accept(h(1), { seq: first.seq, envelope_sha256: first.envelope_sha256 });
    // History paged again, catch-up after REST, a restart: the same sighting.
    expect(g.classify(first)).toBe('reread');
    // The same envelope with its JSON members in another order is the same envelope.
    const reordered = { signature: envelope.signature, ciphertext: envelope.ciphertext, header: { counter: 1, message_id: uuid(1001), chat_id: chat, v: 2 } };
    expect(g.classify(await at(7, reordered))).toBe('reread');
    // Replays: another seq, other bytes, another chat.
    expect(g.classify(await at(8))).toBe('replay');
    expect(g.classify(await at(7, { ...envelope, ciphertext: 'AAAB' }))).toBe('replay');
    expect(g.classify(await at(7, envelope, uuid(4)))).toBe('replay');
    // Accepting the id again is refused in any chat (message ids are unique).
    expect(() => g.accept(h(1, uuid(1001), dev, uuid(4)))).toThrow(CannotDecryptError);
    expect(g.isReplay(h(9, uuid(1001), dev, uuid(4)))).toBe(true);
  });

  it('keeps sightings across a snapshot (a restart), and binds one for a message accepted without it', async () => {
    const g = new ReplayGuard();
    g.accept(h(1), { seq: 3, envelope_sha256: (await at(3)).envelope_sha256 });
    g.accept(h(2, uuid(1002))); // state from before sightings were kept
    const again = new ReplayGuard(JSON.parse(JSON.stringify(g.snapshot())));
    expect(again.classify(await at(3))).toBe('reread');
    expect(again.classify(await at(4))).toBe('replay');
    const legacy = await at(5, { ...envelope, ciphertext: 'CCCC' }, chat, uuid(1002));
    expect(again.classify(legacy)).toBe('reread');
    again.place(legacy);
    expect(again.classify(legacy)).toBe('reread');
    expect(again.classify({ ...legacy, seq: 6 })).toBe('replay');
    expect(again.classify({ ...legacy, envelope_sha256: (await at(5)).envelope_sha256 })).toBe('replay');
    expect(() => again.place({ ...legacy, seq: 6 })).toThrow(CannotDecryptError);
    const never = await at(1, envelope, chat, uuid(1999));
    expect(() => again.place(never)).toThrow(CannotDecryptError); // never accepted
  });

  it('digests only envelope objects: anything else matches nothing', async () => {
    expect(await envelopeDigest('{"header":{}}')).toBe('');
    expect(await envelopeDigest({ header: null, ciphertext: 'x', signature: 'y' })).toBe('');
    expect(await envelopeDigest(envelope)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
