// The unread read model: the caller's chats with unread messages, their
// counts and (optionally) their newest unread envelopes (GetUnread, on login).
import { invalidArgument } from '@bil/runtime';
import type { ChatType } from '../../domain/chat/chat.js';
import { validateLimit } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { requireUsableDevice } from '../repository.js';
import { retentionView, type MessageView } from './history.js';
import { ROW_OVERHEAD_BYTES, iso, maxPageBytes, pageToken, parsePageToken } from './paging.js';
import { POSTED } from '../sql-fields.js';

export interface UnreadView {
  chatId: string;
  type: ChatType;
  title: string;
  unreadCount: number;
  firstUnreadSeq: number;
  lastSeq: number;
  lastActivityAt: string;
  /** The newest unread messages, oldest first. */
  newestUnread: MessageView[];
}

/** Upper bound of GetUnread's max_envelopes_per_chat. */
export const MAX_UNREAD_ENVELOPES = 50;

interface UnreadRow {
  /** null on the one row of a caller with nothing unread (the totals only). */
  chat_id: string | null;
  type: ChatType;
  title: string;
  last_seq: string;
  last_activity_at: Date;
  read_to: string;
  total: string | null;
  n: string;
  msgs: UnreadMessageRow[] | null;
}

interface UnreadMessageRow {
  seq: number;
  message_id: string;
  sender_user_id: string;
  sender_device_id: string;
  epoch: number;
  /** The envelope's JSON text, from its event; null once erased. */
  envelope: string | null;
  created_at: string;
  wrapped_key: string | null;
  removed: boolean;
  tombstone: unknown;
  expires_at: string | null;
}

/**
 * One statement whatever the number of chats: the caller's memberships with
 * unread messages (window totals over all of them), one page of those
 * chats, and per chat a LATERAL index scan of its newest unread messages
 * (each with the calling device's own wrapped key).
 */
export async function getUnread(
  deps: ChatDeps,
  actor: Actor,
  input: { limit: unknown; maxEnvelopesPerChat?: unknown; pageToken?: unknown },
): Promise<{ totalUnread: number; unreadChats: number; chats: UnreadView[]; nextPageToken: string }> {
  const limit = validateLimit(input.limit, 100, 500);
  const maxEnvelopes = parseMaxEnvelopes(input.maxEnvelopesPerChat ?? 0);
  const cursor = parsePageToken(input.pageToken);
  await requireUsableDevice(deps.db, actor);
  const rows = await deps.db.query<UnreadRow>(
    `WITH u AS (
       SELECT c.chat_id, c.type, c.title, c.last_seq, c.last_activity_at, GREATEST(COALESCE(r.last_read_seq, 0), m.joined_seq) AS read_to
       FROM chat.chat_members m
       JOIN chat.chats c ON c.chat_id = m.chat_id AND c.status = 'active'
       LEFT JOIN chat.message_reads r ON r.chat_id = m.chat_id AND r.user_id = m.user_id
       WHERE m.user_id = ? AND m.left_seq IS NULL
     ), t AS (SELECT * FROM u WHERE last_seq > read_to),
     tot AS (SELECT COALESCE(sum(last_seq - read_to), 0) AS total, count(*) AS n FROM t),
     page AS (
       SELECT * FROM t ${cursor ? 'WHERE (last_activity_at, chat_id) < (?::timestamptz, ?::uuid)' : ''}
       ORDER BY last_activity_at DESC, chat_id DESC LIMIT ?
     )
     SELECT p.chat_id, p.type, p.title, p.last_seq, p.last_activity_at, p.read_to, tot.total, tot.n, e.msgs
     FROM tot
     LEFT JOIN page p ON true
     LEFT JOIN LATERAL (
       SELECT jsonb_agg(jsonb_build_object(
                'seq', x.seq, 'message_id', x.message_id, 'sender_user_id', x.sender_user_id, 'sender_device_id', x.sender_device_id,
                'epoch', x.epoch, 'envelope', x.envelope, 'created_at', x.created_at, 'wrapped_key', x.wrapped_key,
                'removed', x.removed, 'tombstone', x.tombstone, 'expires_at', x.expires_at) ORDER BY x.seq) AS msgs
       FROM (
         SELECT mm.seq, mm.message_id, mm.sender_user_id, mm.sender_device_id, mm.epoch, ev.envelope, mm.created_at, k.wrapped_key,
                mm.removed, mm.tombstone, mm.expires_at
         FROM chat.messages mm
         CROSS JOIN LATERAL (SELECT (ev.data->'${POSTED.envelope}')::text AS envelope FROM chat.events ev WHERE ev.position = mm.event_position OFFSET 0) ev
         LEFT JOIN chat.message_keys k ON k.chat_id = mm.chat_id AND k.seq = mm.seq AND k.device_id = ?
         WHERE mm.chat_id = p.chat_id AND mm.seq > p.read_to AND (mm.expires_at IS NULL OR mm.expires_at > ?::timestamptz)
         ORDER BY mm.seq DESC LIMIT ?
       ) x
     ) e ON true
     ORDER BY p.last_activity_at DESC, p.chat_id DESC LIMIT ?`,
    [actor.userId, ...(cursor ?? []), limit + 1, actor.deviceId, nowIso(deps), maxEnvelopes, limit + 1],
  );
  const first = rows[0];
  const found = rows.filter((r) => r.chat_id !== null);
  const page = found.slice(0, limit);
  keepWithinBudget(page, maxPageBytes(deps.settings));
  return {
    totalUnread: first ? Number(first.total) : 0,
    unreadChats: first ? Number(first.n) : 0,
    chats: page.map(toUnreadView),
    nextPageToken: found.length > limit ? pageToken({ last_activity_at: page[page.length - 1]!.last_activity_at, chat_id: page[page.length - 1]!.chat_id! }) : '',
  };
}

function parseMaxEnvelopes(raw: unknown): number {
  if (!Number.isInteger(raw) || (raw as number) < 0 || (raw as number) > MAX_UNREAD_ENVELOPES) {
    throw invalidArgument('invalid_max_envelopes_per_chat', `max_envelopes_per_chat must be 0 to ${MAX_UNREAD_ENVELOPES}`, { field: 'max_envelopes_per_chat' });
  }
  return raw as number;
}

/**
 * The envelopes of one answer share the page byte budget: past it, a chat
 * keeps only its newest unread envelopes that still fit (possibly none); its
 * counts stay exact.
 */
function keepWithinBudget(page: UnreadRow[], bytesBudget: number): void {
  let budget = bytesBudget;
  for (const r of page) {
    const msgs = r.msgs ?? [];
    let keep = 0;
    for (let i = msgs.length - 1; i >= 0; i--) {
      const bytes = (msgs[i]!.envelope?.length ?? 0) + (msgs[i]!.wrapped_key?.length ?? 0) + ROW_OVERHEAD_BYTES;
      if (bytes > budget) break;
      budget -= bytes;
      keep++;
    }
    r.msgs = msgs.slice(msgs.length - keep);
  }
}

function toUnreadView(r: UnreadRow): UnreadView {
  const chatId = r.chat_id!;
  return {
    chatId,
    type: r.type,
    title: r.title,
    unreadCount: Number(r.last_seq) - Number(r.read_to),
    firstUnreadSeq: Number(r.read_to) + 1,
    lastSeq: Number(r.last_seq),
    lastActivityAt: iso(r.last_activity_at),
    newestUnread: (r.msgs ?? []).map((m) => ({
      chatId,
      seq: Number(m.seq),
      messageId: m.message_id,
      senderUserId: m.sender_user_id,
      senderDeviceId: m.sender_device_id,
      envelope: m.envelope ?? '',
      wrappedKey: m.wrapped_key ?? '',
      epoch: Number(m.epoch),
      createdAt: iso(m.created_at),
      ...retentionView(m),
    })),
  };
}
