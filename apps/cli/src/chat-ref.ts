// How a command names a chat (docs/cli.md "Chat references"): its id (or a
// unique prefix of it, as `bil chat list` shows), `@username` for the
// personal chat with that user, or a group's title when only one group has it.
import { CliError, ExitCode } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ID_PREFIX = /^[0-9a-f][0-9a-f-]{3,35}$/;

export const isUuid = (s: string): boolean => UUID.test(s);

export type ChatRef =
  | { readonly kind: 'id'; readonly chatId: string }
  | { readonly kind: 'user'; readonly username: string }
  | { readonly kind: 'name'; readonly text: string };

export function parseChatRef(ref: string): ChatRef {
  const text = ref.trim();
  if (text === '') throw new CliError('usage', 'empty chat reference', ExitCode.usage);
  if (UUID.test(text.toLowerCase())) return { kind: 'id', chatId: text.toLowerCase() };
  if (text.startsWith('@')) {
    const username = text.slice(1);
    if (!username) throw new CliError('usage', 'empty username after "@"', ExitCode.usage);
    return { kind: 'user', username };
  }
  return { kind: 'name', text };
}

/** What chat resolution needs to know of a chat. */
export interface ChatInfo {
  readonly chatId: string;
  readonly type: 'personal' | 'group';
  readonly title: string;
  readonly peerUserId: string;
}

/** The personal chat with `peerUserId` (for `@username`, once the user is looked up). */
export function personalChatWith(chats: readonly ChatInfo[], peerUserId: string, username: string): ChatInfo {
  const chat = chats.find((c) => c.type === 'personal' && c.peerUserId === peerUserId);
  if (!chat) {
    throw new CliError('chat_not_found', `no personal chat with @${username}`, ExitCode.notFound, `open one: bil chat create --personal ${username}`);
  }
  return chat;
}

function ambiguous(text: string, what: string, matches: readonly ChatInfo[]): CliError {
  const list = matches.map((c) => `${c.chatId}${c.title ? ` (${c.title})` : ''}`).join(', ');
  return new CliError('ambiguous_chat', `"${text}" matches ${matches.length} ${what}: ${list}`, ExitCode.usage, 'use the chat id');
}

/**
 * A group title or an id prefix: first groups whose title is exactly `text`,
 * then ignoring case, then chats whose id starts with it (at least 4 hex
 * digits). More than one match is an error that lists them; none is not found.
 */
export function matchChatName(chats: readonly ChatInfo[], text: string): ChatInfo {
  const groups = chats.filter((c) => c.type === 'group');
  for (const same of [(t: string) => t === text, (t: string) => t.toLowerCase() === text.toLowerCase()]) {
    const found = groups.filter((c) => same(c.title));
    if (found.length === 1) return found[0]!;
    if (found.length > 1) throw ambiguous(text, 'groups', found);
  }
  const lower = text.toLowerCase();
  if (ID_PREFIX.test(lower)) {
    const found = chats.filter((c) => c.chatId.startsWith(lower));
    if (found.length === 1) return found[0]!;
    if (found.length > 1) throw ambiguous(text, 'chat ids', found);
  }
  throw new CliError('chat_not_found', `no chat matches "${text}"`, ExitCode.notFound, 'see your chats: bil chat list');
}
