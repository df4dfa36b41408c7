import { describe, expect, it } from 'vitest';
import type { DigestOutcome, HistoryMessage } from '@bil/sdk';
import { stripAnsi, chatLabel, colours, digestLines, formatTime, messageJson, messageLine, plain, safetyNumberRows, table, useColour, userLabel, visibleLength } from './format.js';

const ALICE = '11111111-1111-4111-8111-111111111111';
const names = { [ALICE]: 'alice' };
const now = new Date(2025, 10, 25, 15, 0, 0).getTime();
const at = new Date(2025, 10, 25, 14, 2, 11).getTime();

const ok: HistoryMessage = {
  ok: true,
  chatId: 'c',
  seq: 7,
  messageId: 'm',
  senderUserId: ALICE,
  senderDeviceId: 'd',
  epoch: 1,
  timestamp: at,
  createdAt: new Date(at).toISOString(),
  text: 'Who brings the tent?',
  outgoing: false,
};

describe('colour', () => {
  it('only on a terminal, never with NO_COLOR or --no-color', () => {
    expect(useColour(true, {}, true)).toBe(true);
    expect(useColour(false, {}, true)).toBe(false);
    expect(useColour(undefined, {}, true)).toBe(false);
    expect(useColour(true, { NO_COLOR: '1' }, true)).toBe(false);
    expect(useColour(true, { NO_COLOR: '' }, true)).toBe(true);
    expect(useColour(true, {}, false)).toBe(false);
    expect(useColour(true, { TERM: 'dumb' }, true)).toBe(false);
  });

  it('plain style adds nothing; colours are ANSI that visibleLength ignores', () => {
    expect(plain.red('x')).toBe('x');
    expect(colours.red('x')).toBe('\u001b[31mx\u001b[39m');
    expect(visibleLength(colours.bold(colours.red('abc')))).toBe(3);
  });
});

describe('tables and times', () => {
  it('pads columns to the widest visible cell', () => {
    expect(table([['ID', 'CHAT'], ['aaaa1111', colours.bold('#Weekend')]]).map(stripAnsi)).toEqual(['ID        CHAT', 'aaaa1111  #Weekend']);
    expect(table([['a', ''], ['bb', 'x']])).toEqual(['a', 'bb  x']);
  });

  it('shows the time of day for today, the date otherwise', () => {
    expect(formatTime(at, now)).toBe('14:02:11');
    expect(formatTime(new Date(2025, 0, 2, 9, 5).getTime(), now)).toBe('2025-01-02 09:05');
  });
});

describe('names', () => {
  it('names users and chats', () => {
    expect(userLabel(ALICE, names)).toBe('alice');
    expect(userLabel('99999999-0000-4000-8000-000000000000', names)).toBe('user:99999999');
    expect(chatLabel({ type: 'group', title: 'Weekend', peerUserId: '' }, names)).toBe('#Weekend');
    expect(chatLabel({ type: 'personal', title: '', peerUserId: ALICE }, names)).toBe('@alice');
  });
});

describe('messages', () => {
  it('prints seq, time, sender and text', () => {
    expect(messageLine(ok, names, plain, now)).toBe('   7  14:02:11  alice: Who brings the tent?');
  });

  it('prints one marker for anything that did not decrypt, with the unsigned claim', () => {
    const bad: HistoryMessage = { ok: false, error: 'cannot_decrypt', chatId: 'c', seq: 8, messageId: 'm2', senderUserId: ALICE, senderDeviceId: 'd', epoch: 2, createdAt: new Date(at).toISOString() };
    expect(messageLine(bad, names, plain, now)).toBe('   8  14:02:11  [cannot decrypt] claimed sender alice');
  });

  it('adds the sender name in JSON', () => {
    expect(messageJson(ok, names)).toMatchObject({ text: 'Who brings the tent?', sender: 'alice', seq: 7 });
    expect(messageJson(ok, {})).toMatchObject({ sender: null });
  });
});

describe('digests', () => {
  it('prints a summary: topic, key points, actions', () => {
    const d: DigestOutcome = {
      kind: 'summary',
      chatId: 'c',
      topic: 'Weekend trip',
      keyPoints: ['We leave Saturday at 8'],
      actions: [{ owner: 'bob', action: 'bring the tent' }, { owner: '', action: 'book the campsite' }],
      language: 'en',
      method: 'extractive',
      messageCount: 24,
    };
    expect(digestLines(d, '#Weekend', names, plain)).toEqual([
      '#Weekend',
      '  summary of 24 messages (built-in summariser, en)',
      '  Topic: Weekend trip',
      '  Key points:',
      '    - We leave Saturday at 8',
      '  Actions:',
      '    - bob: bring the tent',
      '    - book the campsite',
    ]);
  });

  it('prints the messages below the threshold, or that digests are off', () => {
    expect(digestLines({ kind: 'messages', chatId: 'c', messages: [ok] }, '#W', names, plain)).toEqual(['#W', '  below the digest threshold; the unread messages:', `  ${messageLine(ok, names, plain)}`]);
    expect(digestLines({ kind: 'disabled', chatId: 'c' }, '#W', names, plain)[1]).toContain('switched off');
  });
});

describe('safety numbers', () => {
  it('groups 60 digits 5 by 5, four groups a row', () => {
    const digits = '012345678901234567890123456789012345678901234567890123456789';
    expect(safetyNumberRows(digits)).toEqual(['01234 56789 01234 56789', '01234 56789 01234 56789', '01234 56789 01234 56789']);
  });
});
