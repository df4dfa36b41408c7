import { describe, expect, it } from 'vitest';
import type { DecryptedMessage, DigestOutcome, HistoryMessage } from '@bil/sdk';
import { stripAnsi, chatLabel, colours, digestLines, formatTime, messageBody, messageJson, messageLine, plain, safe, safetyNumberRows, table, useColour, userLabel, visibleLength } from './format.js';

const ALICE = '11111111-1111-4111-8111-111111111111';
const names = { [ALICE]: 'alice' };
const now = new Date(2025, 10, 25, 15, 0, 0).getTime();
const at = new Date(2025, 10, 25, 14, 2, 11).getTime();

const ok: DecryptedMessage = {
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

  it('shows a reply\'s quote, attachments, "(edited)" and reactions; unknown or malformed content as a marker', () => {
    const reply = { ...ok, text: 'me!', content: { kind: 'text' as const, text: 'me!', reply_to: { message_id: 'x', quote: 'Who brings the tent?\u202e and a lot more text after it, cut' } }, edited: [{ text: 'me!', at, messageId: 'e' }], reactions: { '👍': [ALICE, 'b'], '\u001b[31m': ['c'] } };
    expect(messageBody(reply, plain, ' ')).toBe('↪ "Who brings the tent? and a lot more text…" me! (edited)  👍 2  [31m 1');
    const file = { ...ok, text: '', content: { kind: 'text' as const, text: '', attachments: [{ blob_id: 'b', key: 'k', digest: 'd', size: 12, chunk_size: 1, mime: 'text/plain', name: 'a\nb.txt' }] } };
    expect(messageBody(file, plain, ' ')).toBe('[file a b.txt, 12 bytes]');
    expect(messageBody({ ...ok, text: '', content: { kind: 'unsupported' } }, plain, ' ')).toContain("can't show");
    expect(messageBody({ ...ok, text: '', content: { kind: 'invalid' } }, plain, ' ')).toBe('[malformed message]');
    expect(messageBody(ok as DecryptedMessage, plain, ' ')).toBe('Who brings the tent?');
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
      on: 'server',
      excludedCount: 0,
      fromSeq: 5,
      toSeq: 28,
    };
    expect(digestLines(d, '#Weekend', names, plain)).toEqual([
      '#Weekend',
      '  summary of 24 messages (built-in summariser, en) by the digest service; seq 5–28',
      '  Topic: Weekend trip',
      '  Key points:',
      '    - We leave Saturday at 8',
      '  Actions:',
      '    - bob: bring the tent',
      '    - book the campsite',
    ]);
  });

  it('says where the summary was made, and what consent left out', () => {
    const base = { kind: 'summary' as const, chatId: 'c', topic: 't', keyPoints: [], actions: [], language: 'en', method: 'extractive' as const, messageCount: 20, fromSeq: 3, toSeq: 30 };
    expect(digestLines({ ...base, on: 'device', excludedCount: 0 }, '#W', names, plain)[1]).toBe('  summary of 20 messages (built-in summariser, en) made on this device; seq 3–30');
    expect(digestLines({ ...base, on: 'model', method: 'llm', excludedCount: 8 }, '#W', names, plain)[1]).toBe(
      '  summary of 20 messages (language model, en) by your model; seq 3–30, 8 left out (their senders opted out)',
    );
  });

  it('prints the messages below the threshold, or why nothing was sent', () => {
    expect(digestLines({ kind: 'messages', chatId: 'c', messages: [ok] }, '#W', names, plain)).toEqual(['#W', '  below the digest threshold; the unread messages:', `  ${messageLine(ok, names, plain)}`]);
    expect(digestLines({ kind: 'disabled', chatId: 'c', reason: 'group_setting' }, '#W', names, plain)[1]).toContain('admins switched digests off');
    expect(digestLines({ kind: 'disabled', chatId: 'c', reason: 'members_opted_out' }, '#W', names, plain)[1]).toContain('asked to be left out');
    expect(digestLines({ kind: 'disabled', chatId: 'c', reason: 'server_policy' }, '#W', names, plain)[1]).toContain('--on-device still works');
  });
});

describe('safety numbers', () => {
  it('groups 60 digits 5 by 5, four groups a row', () => {
    const digits = '012345678901234567890123456789012345678901234567890123456789';
    expect(safetyNumberRows(digits)).toEqual(['01234 56789 01234 56789', '01234 56789 01234 56789', '01234 56789 01234 56789']);
  });
});

describe('untrusted text in human output', () => {
  const ESC = '\u001b';
  // Nothing a chat member writes may reach the terminal as a control: no ESC,
  // no C0/C1 controls, no DEL, no bidi controls or invisible formatting.
  // eslint-disable-next-line no-control-regex
  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/;

  it('removes escape sequences, controls, bidi overrides and invisible characters; tabs become spaces', () => {
    expect(safe(`hi ${ESC}]52;c;ZXZpbA==\u0007 there`)).toBe('hi ]52;c;ZXZpbA== there');
    expect(safe(`${ESC}[2J${ESC}[H${ESC}[1Aclear`)).toBe('[2J[H[1Aclear');
    expect(safe('a\u009b31mb\u007fc\u0000d\u0008e')).toBe('a31mbcde');
    expect(safe('evil\u202egnp.exe\u2066x\u2069\u200b\u200f\ufeff')).toBe('evilgnp.exex');
    expect(safe('a\tb')).toBe('a    b');
    expect(safe('plain text, émoji 🙂, 中文, עברית')).toBe('plain text, émoji 🙂, 中文, עברית');
  });

  it('turns line breaks into a space, or into the given continuation', () => {
    expect(safe('a\nb\r\nc\rd\u2028e\u000bf')).toBe('a b c d e f');
    expect(safe('a\nb', '\n  | ')).toBe('a\n  | b');
  });

  it('a forged newline in a message cannot make a line that looks like another message', () => {
    const forged: HistoryMessage = { ...ok, text: `see below\n   8  14:02:12  bob: send me the password\r   9  14:02:13  carol: ok${ESC}[2K` };
    const line = messageLine(forged, names, plain, now);
    const rows = line.split('\n');
    expect(rows[0]).toBe('   7  14:02:11  alice: see below');
    // Every further row is a continuation: indented to the message text, behind a gutter mark.
    for (const row of rows.slice(1)) expect(row.startsWith(`${' '.repeat('   7  14:02:11  alice'.length)}│ `)).toBe(true);
    expect(rows.slice(1)).toEqual([
      '                     │    8  14:02:12  bob: send me the password',
      '                     │    9  14:02:13  carol: ok[2K',
    ]);
    expect(rows.slice(1).some((r) => /^\s{0,4}\d+ {2}\d/.test(r))).toBe(false);
    expect(CONTROL.test(line)).toBe(false);
    // In colour only the CLI's own colour codes are escape sequences.
    const coloured = messageLine(forged, names, colours, now);
    expect(stripAnsi(coloured)).toBe(line);
  });

  it('sanitizes names: a username or title cannot break the line either', () => {
    const evil = { [ALICE]: `alice${ESC}]52;c;eA==\u0007\n✔ The numbers match` };
    expect(userLabel(ALICE, evil)).toBe('alice]52;c;eA== ✔ The numbers match');
    expect(messageLine(ok, evil, plain, now).split('\n')).toHaveLength(1);
    // chatLabel is exact (it is the --json label); human output passes it through safe().
    expect(chatLabel({ type: 'group', title: 'a\nb', peerUserId: '' }, names)).toBe('#a\nb');
  });

  it('keeps --json exact', () => {
    const text = `x${ESC}[31m\ny\u202e`;
    const json = JSON.stringify(messageJson({ ...ok, text }, names));
    expect(JSON.parse(json).text).toBe(text);
    expect(json).not.toContain(ESC);
  });

  it('sanitizes digests (the summary is a language model\'s output over what members wrote)', () => {
    const d: DigestOutcome = {
      kind: 'summary',
      chatId: 'c',
      topic: `Trip${ESC}[2J\n#Other chat`,
      keyPoints: ['one\n  Actions:\u202e'],
      actions: [{ owner: `bob${ESC}[31m`, action: 'pay\n    - alice: pay twice' }],
      language: 'en',
      method: 'llm',
      messageCount: 3,
      on: 'server',
      excludedCount: 0,
      fromSeq: 1,
      toSeq: 3,
    };
    const lines = digestLines(d, `#Trip\n${ESC}]0;title\u0007`, names, plain).join('\n').split('\n');
    expect(lines).toEqual([
      '#Trip ]0;title',
      '  summary of 3 messages (language model, en) by the digest service; seq 1–3',
      '  Topic: Trip[2J',
      '    │ #Other chat',
      '  Key points:',
      '    - one',
      '      │   Actions:',
      '  Actions:',
      '    - bob[31m: pay',
      '      │     - alice: pay twice',
      ]);
    expect(lines.some((l) => CONTROL.test(l))).toBe(false);
  });
});
