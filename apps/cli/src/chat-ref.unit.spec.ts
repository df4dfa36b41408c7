import { describe, expect, it } from 'vitest';
import { matchChatName, parseChatRef, personalChatWith, type ChatInfo } from './chat-ref.js';
import { CliError, ExitCode } from './errors.js';

const chat = (chatId: string, type: 'personal' | 'group', title = '', peerUserId = ''): ChatInfo => ({ chatId, type, title, peerUserId });
const BOB = '22222222-2222-4222-8222-222222222222';
const chats = [
  chat('aaaa1111-0000-4000-8000-000000000001', 'group', 'Weekend'),
  chat('aaaa2222-0000-4000-8000-000000000002', 'group', 'Work'),
  chat('bbbb1111-0000-4000-8000-000000000003', 'group', 'work'),
  chat('cccc1111-0000-4000-8000-000000000004', 'personal', '', BOB),
  chat('dddd1111-0000-4000-8000-000000000005', 'group', 'Twins'),
  chat('dddd2222-0000-4000-8000-000000000006', 'group', 'Twins'),
  chat('eeee1111-0000-4000-8000-000000000007', 'group', 'beef'),
];

function failure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error('expected a CliError');
}

describe('chat references', () => {
  it('tells ids, @usernames and names apart', () => {
    expect(parseChatRef('AAAA1111-0000-4000-8000-000000000001')).toEqual({ kind: 'id', chatId: 'aaaa1111-0000-4000-8000-000000000001' });
    expect(parseChatRef('@bob')).toEqual({ kind: 'user', username: 'bob' });
    expect(parseChatRef(' Weekend ')).toEqual({ kind: 'name', text: 'Weekend' });
    expect(parseChatRef('aaaa1111')).toEqual({ kind: 'name', text: 'aaaa1111' });
    expect(failure(() => parseChatRef('@')).exitCode).toBe(ExitCode.usage);
    expect(failure(() => parseChatRef('  ')).exitCode).toBe(ExitCode.usage);
  });

  it('finds a group by its exact title first, then ignoring case', () => {
    expect(matchChatName(chats, 'Weekend').chatId).toBe(chats[0]!.chatId);
    expect(matchChatName(chats, 'weekend').chatId).toBe(chats[0]!.chatId);
    // "Work" and "work" both exist: the exact one wins.
    expect(matchChatName(chats, 'Work').chatId).toBe(chats[1]!.chatId);
    expect(matchChatName(chats, 'work').chatId).toBe(chats[2]!.chatId);
  });

  it('refuses an ambiguous title, listing the candidates (usage error)', () => {
    const e = failure(() => matchChatName(chats, 'Twins'));
    expect(e).toMatchObject({ code: 'ambiguous_chat', exitCode: ExitCode.usage });
    expect(e.message).toContain('dddd1111-0000-4000-8000-000000000005');
    expect(e.message).toContain('dddd2222-0000-4000-8000-000000000006');
    const w = failure(() => matchChatName(chats, 'WORK'));
    expect(w.code).toBe('ambiguous_chat');
  });

  it('takes a unique id prefix, refuses a shared or too short one', () => {
    expect(matchChatName(chats, 'cccc1111').chatId).toBe(chats[3]!.chatId);
    expect(matchChatName(chats, 'CCCC').chatId).toBe(chats[3]!.chatId);
    expect(failure(() => matchChatName(chats, 'aaaa')).code).toBe('ambiguous_chat');
    expect(failure(() => matchChatName(chats, 'ccc')).exitCode).toBe(ExitCode.notFound);
    // A title that looks like hex is a title first.
    expect(matchChatName(chats, 'beef').chatId).toBe(chats[6]!.chatId);
  });

  it('reports an unknown chat as not found (exit code 4)', () => {
    expect(failure(() => matchChatName(chats, 'Holidays'))).toMatchObject({ code: 'chat_not_found', exitCode: ExitCode.notFound });
    expect(failure(() => matchChatName([], 'x')).hint).toContain('bil chat list');
  });

  it('finds the personal chat with a user', () => {
    expect(personalChatWith(chats, BOB, 'bob').chatId).toBe(chats[3]!.chatId);
    const e = failure(() => personalChatWith(chats, '33333333-3333-4333-8333-333333333333', 'carol'));
    expect(e).toMatchObject({ code: 'chat_not_found', exitCode: ExitCode.notFound });
    expect(e.hint).toBe('open one: bil chat create --personal carol');
  });
});
