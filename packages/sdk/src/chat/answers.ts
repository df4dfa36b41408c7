// Shape checks of the server's answers the messaging engine acts on. A
// malformed answer (a list that is null, a missing field, a number that is a
// string) is a BilProtocolError naming what was wrong, never a TypeError
// from deep inside the engine. The content of each item is still verified
// cryptographically where it matters; this only makes the shape safe to read.
import { BilProtocolError } from '../errors.js';
import type { ChatJson, DeviceJson, DirectoryJson, EpochJson, EpochsPageJson, MemberJson, MessageJson, MessagesPageJson, UnreadJson } from '../wire.js';

/** Most pages one operation follows before giving up (a server that always answers `has_more`). */
export const MAX_PAGES = 1000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function object(v: unknown, what: string): Record<string, unknown> {
  if (!isObject(v)) throw new BilProtocolError(`${what}: expected an object`);
  return v;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new BilProtocolError(`${what}: expected a list, got ${v === null ? 'null' : typeof v}`);
  return v;
}

function str(o: Record<string, unknown>, k: string, what: string): string {
  if (typeof o[k] !== 'string') throw new BilProtocolError(`${what}.${k}: expected a string`);
  return o[k];
}

function int(o: Record<string, unknown>, k: string, what: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BilProtocolError(`${what}.${k}: expected a non-negative integer`);
  return v;
}

function bool(o: Record<string, unknown>, k: string, what: string): boolean {
  if (typeof o[k] !== 'boolean') throw new BilProtocolError(`${what}.${k}: expected true or false`);
  return o[k];
}

export function messageJson(raw: unknown, what = 'message'): MessageJson {
  const m = object(raw, what);
  for (const k of ['chat_id', 'message_id', 'sender_user_id', 'sender_device_id', 'created_at']) str(m, k, what);
  int(m, 'seq', what);
  if (m.epoch !== undefined) int(m, 'epoch', what);
  if (m.wrapped_key !== undefined && typeof m.wrapped_key !== 'string') throw new BilProtocolError(`${what}.wrapped_key: expected a string`);
  return m as unknown as MessageJson;
}

export function messagesPage(raw: unknown): MessagesPageJson {
  const p = object(raw, 'messages page');
  const messages = list(p.messages, 'messages page.messages').map((m, i) => messageJson(m, `messages[${i}]`));
  return { messages, has_more: bool(p, 'has_more', 'messages page'), last_seq: int(p, 'last_seq', 'messages page') };
}

function memberJson(raw: unknown, what: string): MemberJson {
  const m = object(raw, what);
  str(m, 'user_id', what);
  const role = str(m, 'role', what);
  if (role !== 'owner' && role !== 'admin' && role !== 'member') throw new BilProtocolError(`${what}.role: unknown role`);
  return m as unknown as MemberJson;
}

export function chatJson(raw: unknown): ChatJson {
  const c = object(raw, 'chat');
  for (const k of ['chat_id', 'type', 'my_role']) str(c, k, 'chat');
  if (c.type !== 'personal' && c.type !== 'group') throw new BilProtocolError('chat.type: unknown type');
  int(c, 'epoch', 'chat');
  int(c, 'last_seq', 'chat');
  const members = list(c.members ?? [], 'chat.members').map((m, i) => memberJson(m, `chat.members[${i}]`));
  if (c.pending_leaves !== undefined) list(c.pending_leaves, 'chat.pending_leaves');
  return {
    ...(c as unknown as ChatJson),
    title: typeof c.title === 'string' ? c.title : '',
    peer_user_id: typeof c.peer_user_id === 'string' ? c.peer_user_id : '',
    epoch_rotation_required: c.epoch_rotation_required === true,
    members,
    disappearing_ms: typeof c.disappearing_ms === 'number' ? c.disappearing_ms : 0,
  };
}

export function chatsPage(raw: unknown): { chats: ChatJson[]; next_cursor: string } {
  const p = object(raw, 'chats page');
  return { chats: list(p.chats, 'chats page.chats').map(chatJson), next_cursor: typeof p.next_cursor === 'string' ? p.next_cursor : '' };
}

export function epochsPage(raw: unknown): EpochsPageJson {
  const p = object(raw, 'epochs page');
  const epochs = list(p.epochs, 'epochs page.epochs').map((e, i) => {
    const o = object(e, `epochs[${i}]`);
    int(o, 'epoch', `epochs[${i}]`);
    object(o.record, `epochs[${i}].record`);
    if (o.wrapped_key !== undefined && typeof o.wrapped_key !== 'string') throw new BilProtocolError(`epochs[${i}].wrapped_key: expected a string`);
    return o as unknown as EpochJson;
  });
  for (let i = 1; i < epochs.length; i++) if (epochs[i]!.epoch <= epochs[i - 1]!.epoch) throw new BilProtocolError('epochs page: epochs out of order');
  return { epochs, has_more: bool(p, 'has_more', 'epochs page'), current_epoch: typeof p.current_epoch === 'number' ? p.current_epoch : 0 };
}

export function unreadJson(raw: unknown): UnreadJson {
  const u = object(raw, 'unread');
  int(u, 'total_unread', 'unread');
  const chats = list(u.chats, 'unread.chats').map((c, i) => {
    const o = object(c, `unread.chats[${i}]`);
    str(o, 'chat_id', `unread.chats[${i}]`);
    int(o, 'unread_count', `unread.chats[${i}]`);
    const newest = o.newest_unread === undefined ? [] : list(o.newest_unread, `unread.chats[${i}].newest_unread`).map((m, j) => messageJson(m, `unread.chats[${i}].newest_unread[${j}]`));
    // Older gateways leave out `title`, `newest_unread`, `unread_chats` and `next_page_token`: filled in here.
    return { ...(o as unknown as UnreadJson['chats'][number]), title: typeof o.title === 'string' ? o.title : '', newest_unread: newest };
  });
  return {
    ...(u as unknown as UnreadJson),
    unread_chats: typeof u.unread_chats === 'number' ? u.unread_chats : chats.length,
    next_page_token: typeof u.next_page_token === 'string' ? u.next_page_token : '',
    chats,
  };
}

/** A user's key directory (`GET /v1/users/{id}/devices`). */
export function directoryJson(raw: unknown): DirectoryJson {
  const d = object(raw, 'directory');
  str(d, 'user_id', 'directory');
  str(d, 'identity_key', 'directory');
  const devices = list(d.devices, 'directory.devices').map((x, i) => {
    const o = object(x, `directory.devices[${i}]`);
    for (const k of ['device_id', 'user_id', 'encryption_key', 'signing_key', 'certificate']) str(o, k, `directory.devices[${i}]`);
    int(o, 'certificate_issued_at', `directory.devices[${i}]`);
    return { ...(o as unknown as DeviceJson), name: typeof o.name === 'string' ? o.name : '' };
  });
  return { ...(d as unknown as DirectoryJson), devices };
}
