import type { DecodedContent } from '@bil/crypto';
import { describe, expect, it } from 'vitest';
import { applyContent, ContentState, type NotedMessage } from './content-state.js';

const A = '0193c2a5-0000-7000-8000-00000000000a';
const B = '0193c2a5-0000-7000-8000-00000000000b';
const C = '0193c2a5-0000-7000-8000-00000000000c';
const id = (n: number): string => `0193c2a5-0000-7000-8000-${String(n).padStart(12, '0')}`;
const chatId = id(999);

let seq = 0;
function msg(sender: string, content: DecodedContent, n = ++seq): NotedMessage {
  return { chatId, messageId: id(n), seq: n, senderUserId: sender, timestamp: 1000 + n, content };
}

describe('content state', () => {
  it('aggregates reactions per emoji from several users; a later remove takes one back', () => {
    const s = new ContentState();
    const m = msg(A, { kind: 'text', text: 'hi' });
    const list = [
      m,
      msg(A, { kind: 'reaction', target: m.messageId, emoji: '👍' }),
      msg(B, { kind: 'reaction', target: m.messageId, emoji: '👍' }),
      msg(C, { kind: 'reaction', target: m.messageId, emoji: '❤️' }),
      msg(C, { kind: 'reaction', target: m.messageId, emoji: '❤️', remove: true }),
      msg(B, { kind: 'reaction', target: m.messageId, emoji: '🎉' }),
    ];
    const out = applyContent(s, list);
    expect(out.messages).toHaveLength(1);
    expect(out.messages[0]).toMatchObject({ messageId: m.messageId, text: 'hi', edited: [], reactions: { '👍': [A, B].sort(), '🎉': [B] } });
    expect(out.ignored).toEqual([]);
  });

  it('does not depend on the order messages are seen in (updates before their target)', () => {
    const m = msg(A, { kind: 'text', text: 'v1' });
    const add = msg(B, { kind: 'reaction', target: m.messageId, emoji: '👍' });
    const remove = msg(B, { kind: 'reaction', target: m.messageId, emoji: '👍', remove: true });
    const e1 = msg(A, { kind: 'edit', target: m.messageId, text: 'v2' });
    const e2 = msg(A, { kind: 'edit', target: m.messageId, text: 'v3' });
    const s = new ContentState();
    applyContent(s, [remove, e2]);
    const out = applyContent(s, [m, add, e1]);
    expect(out.messages[0]).toMatchObject({ text: 'v3', reactions: {} });
    expect(out.messages[0]!.edited.map((e) => e.text)).toEqual(['v2', 'v3']);
    expect(out.messages[0]!.edited[0]).toEqual({ text: 'v2', at: e1.timestamp, messageId: e1.messageId });
  });

  it("applies only the sender's own edits of text messages; others are ignored and reported", () => {
    const s = new ContentState();
    const m = msg(A, { kind: 'text', text: 'mine' });
    const forged = msg(B, { kind: 'edit', target: m.messageId, text: 'not yours' });
    const odd = msg(A, { kind: 'unsupported' });
    const onOdd = msg(A, { kind: 'edit', target: odd.messageId, text: 'x' });
    const out = applyContent(s, [m, forged, odd, onOdd]);
    expect(out.messages.map((x) => [x.messageId, x.text, x.edited.length])).toEqual([
      [m.messageId, 'mine', 0],
      [odd.messageId, '', 0],
    ]);
    expect(out.ignored).toEqual([
      { chatId, messageId: forged.messageId, seq: forged.seq, senderUserId: B, target: m.messageId, reason: 'not_own_message' },
      { chatId, messageId: onOdd.messageId, seq: onOdd.seq, senderUserId: A, target: odd.messageId, reason: 'not_editable' },
    ]);
    // Seen before its target, a forged edit is still never applied.
    const s2 = new ContentState();
    applyContent(s2, [forged]);
    expect(applyContent(s2, [m]).messages[0]).toMatchObject({ text: 'mine', edited: [] });
  });

  it('leaves out hidden messages, and shows replies with their content', () => {
    const s = new ContentState();
    const m = msg(A, { kind: 'text', text: 'secret' });
    const r = msg(B, { kind: 'text', text: 'reply', reply_to: { message_id: m.messageId, quote: 'secret' } });
    const out = applyContent(s, [m, r], new Set([m.messageId]));
    expect(out.messages).toHaveLength(1);
    expect(out.messages[0]).toMatchObject({ messageId: r.messageId, content: { kind: 'text', reply_to: { message_id: m.messageId } } });
    expect(s.origin(m.messageId)).toEqual({ senderUserId: A, kind: 'text', text: 'secret' });
  });
});
