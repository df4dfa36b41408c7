// The chats read model: one chat as its member sees it (GetChat, and the
// answer of most membership commands) and the caller's chats by last activity
// (ListChats).
import type { Sql } from '@bil/runtime';
import type { ChatType, Role } from '../../domain/chat/chat.js';
import { validateLimit, validateUuid } from '../../domain/validation.js';
import { chatNotFound, type Actor, type ChatDeps } from '../context.js';
import { requireUsableDevice } from '../repository.js';
import { iso, pageToken, parsePageToken, unreadOf } from './paging.js';

export interface MemberView {
  userId: string;
  role: Role;
  joinedAt: string;
  joinedSeq: number;
}

export interface ChatView {
  chatId: string;
  type: ChatType;
  /** Legacy plaintext title of a group created before encrypted titles, until its first v2 record; "" otherwise. */
  title: string;
  createdBy: string;
  createdAt: string;
  lastSeq: number;
  lastActivityAt: string;
  epoch: number;
  epochRotationRequired: boolean;
  myRole: Role;
  memberCount: number;
  lastReadSeq: number;
  unreadCount: number;
  peerUserId: string;
  members: MemberView[];
  /** Groups, single-chat answers only: the signed leaves (JSON text) recorded since the current epoch. */
  pendingLeaves: string[];
  /** The disappearing-message timer in ms (0 = off). */
  disappearingMs: number;
  /** Personal chats: the signed timer statement that set it, JSON text; "" before the first and for groups. */
  timerStatement: string;
}

interface ChatRow {
  chat_id: string;
  type: ChatType;
  title: string;
  created_by: string;
  created_at: Date;
  last_seq: string;
  last_activity_at: Date;
  epoch: number;
  epoch_rotation_required: boolean;
  member_count: number;
  pair_key: string | null;
  role: Role;
  joined_seq: string;
  last_read_seq: string;
  disappearing_ms: string;
  timer_statement: unknown;
}

const CHAT_VIEW_SQL = `SELECT c.chat_id, c.type, c.title, c.created_by, c.created_at, c.last_seq, c.last_activity_at, c.epoch,
         c.epoch_rotation_required, c.member_count, c.pair_key, m.role, m.joined_seq, COALESCE(r.last_read_seq, 0) AS last_read_seq,
         c.disappearing_ms, c.timer_statement
  FROM chat.chat_members m
  JOIN chat.chats c ON c.chat_id = m.chat_id AND c.status = 'active'
  LEFT JOIN chat.message_reads r ON r.chat_id = m.chat_id AND r.user_id = m.user_id
  WHERE m.user_id = ? AND m.left_seq IS NULL`;

function toChatView(r: ChatRow, me: string, members: MemberView[] = [], pendingLeaves: string[] = []): ChatView {
  const lastSeq = Number(r.last_seq);
  const lastRead = Number(r.last_read_seq);
  return {
    chatId: r.chat_id,
    type: r.type,
    title: r.title,
    createdBy: r.created_by,
    createdAt: iso(r.created_at),
    lastSeq,
    lastActivityAt: iso(r.last_activity_at),
    epoch: r.epoch,
    epochRotationRequired: r.epoch_rotation_required,
    myRole: r.role,
    memberCount: r.member_count,
    lastReadSeq: lastRead,
    unreadCount: unreadOf(lastSeq, lastRead, Number(r.joined_seq)),
    peerUserId: r.pair_key?.split(':').find((u) => u !== me) ?? '',
    members,
    pendingLeaves,
    disappearingMs: Number(r.disappearing_ms),
    timerStatement: r.timer_statement ? JSON.stringify(r.timer_statement) : '',
  };
}

export async function getChat(deps: ChatDeps, actor: Actor, rawChatId: unknown): Promise<ChatView> {
  const chatId = validateUuid(rawChatId, 'chat_id');
  await requireUsableDevice(deps.db, actor);
  const [row] = await deps.db.query<ChatRow>(`${CHAT_VIEW_SQL} AND m.chat_id = ?`, [actor.userId, chatId]);
  if (!row) throw chatNotFound();
  const pending = row.type === 'group' ? await pendingLeaves(deps.db, chatId) : [];
  return toChatView(row, actor.userId, await members(deps.db, chatId), pending);
}

export async function listChats(
  deps: ChatDeps,
  actor: Actor,
  input: { type: ChatType | undefined; limit: unknown; pageToken: unknown },
): Promise<{ chats: ChatView[]; nextPageToken: string }> {
  const limit = validateLimit(input.limit, 50, 100);
  const cursor = parsePageToken(input.pageToken);
  await requireUsableDevice(deps.db, actor);
  const params: unknown[] = [actor.userId];
  let sql = CHAT_VIEW_SQL;
  if (input.type) {
    sql += ' AND c.type = ?';
    params.push(input.type);
  }
  if (cursor) {
    sql += ' AND (c.last_activity_at, c.chat_id) < (?::timestamptz, ?::uuid)';
    params.push(...cursor);
  }
  const rows = await deps.db.query<ChatRow>(`${sql} ORDER BY c.last_activity_at DESC, c.chat_id DESC LIMIT ?`, [...params, limit + 1]);
  const page = rows.slice(0, limit);
  return {
    chats: page.map((r) => toChatView(r, actor.userId)),
    nextPageToken: rows.length > limit ? pageToken(page[page.length - 1]!) : '',
  };
}

/** A chat's current members, in joining order. */
export async function members(q: Sql, chatId: string): Promise<MemberView[]> {
  const rows = await q.query<{ user_id: string; role: Role; joined_at: Date; joined_seq: string }>(
    `SELECT user_id, role, joined_at, joined_seq FROM chat.chat_members WHERE chat_id = ? AND left_seq IS NULL ORDER BY joined_seq, joined_at, user_id`,
    [chatId],
  );
  return rows.map((r) => ({ userId: r.user_id, role: r.role, joinedAt: iso(r.joined_at), joinedSeq: Number(r.joined_seq) }));
}

/** The signed leaves recorded since the chat's current epoch (pending until the next one), oldest first, as JSON text. */
async function pendingLeaves(q: Sql, chatId: string): Promise<string[]> {
  const rows = await q.query<{ leave: unknown }>(
    `SELECT l.leave FROM chat.group_leaves l JOIN chat.chats c ON c.chat_id = l.chat_id AND c.epoch = l.recorded_epoch
     WHERE l.chat_id = ? ORDER BY l.left_seq, l.recorded_at, l.user_id`,
    [chatId],
  );
  return rows.map((r) => JSON.stringify(r.leave));
}
