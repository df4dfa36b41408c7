// The history read model: one page of a chat's messages, forwards or
// backwards, each with the calling device's own wrapped key (ListMessages).
import { validateLimit, validateSeq, validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { access } from '../repository.js';
import { ROW_OVERHEAD_BYTES, iso, maxPageBytes } from './paging.js';
import { POSTED } from '../sql-fields.js';

export interface MessageView {
  chatId: string;
  seq: number;
  messageId: string;
  senderUserId: string;
  senderDeviceId: string;
  envelope: string;
  wrappedKey: string;
  epoch: number;
  createdAt: string;
  /** Deleted for everyone or erased on expiry: envelope and wrappedKey are "". */
  removed: boolean;
  /** The sender's signed tombstone as JSON text; "" unless they deleted it. */
  tombstone: string;
  /** RFC 3339; "" when it never expires. */
  expiresAt: string;
}

/** A message row's retention columns as MessageView has them. */
export function retentionView(r: { removed: boolean; tombstone: unknown; expires_at: Date | string | null }): Pick<MessageView, 'removed' | 'tombstone' | 'expiresAt'> {
  return {
    removed: r.removed,
    tombstone: r.tombstone ? (typeof r.tombstone === 'string' ? r.tombstone : JSON.stringify(r.tombstone)) : '',
    expiresAt: r.expires_at ? iso(r.expires_at) : '',
  };
}

export async function listMessages(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; afterSeq?: unknown; beforeSeq?: unknown; limit: unknown },
): Promise<{ messages: MessageView[]; hasMore: boolean; lastSeq: number }> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const limit = validateLimit(input.limit, 50, 200);
  const caller = await access(deps.db, actor, chatId);
  const forwards = input.afterSeq !== undefined;
  const after = forwards ? validateSeq(input.afterSeq, 'after_seq') : 0;
  const before = input.beforeSeq !== undefined ? validateSeq(input.beforeSeq, 'before_seq') : caller.lastSeq + 1;
  // Only messages from the caller's membership intervals; each row with the calling device's own key only.
  const { rows, hasMore } = await readPage(deps, { chatId, after, before, forwards, limit, member: actor });
  return { messages: rows.map((r) => messageView(chatId, r)), hasMore, lastSeq: caller.lastSeq };
}

/** A message row as readPage returns it. */
export interface PageRow {
  seq: string;
  message_id: string;
  sender_user_id: string;
  sender_device_id: string;
  epoch: number;
  /** The envelope's JSON text, from its event (the message row refers to it); null once erased. */
  envelope: string | null;
  created_at: Date;
  /** The member device's own key; null without `member` (and for groups). */
  wrapped_key: string | null;
  removed: boolean;
  tombstone: unknown;
  expires_at: Date | null;
}

export function messageView(chatId: string, r: PageRow): MessageView {
  return {
    chatId,
    seq: Number(r.seq),
    messageId: r.message_id,
    senderUserId: r.sender_user_id,
    senderDeviceId: r.sender_device_id,
    envelope: r.envelope ?? '',
    wrappedKey: r.wrapped_key ?? '',
    epoch: r.epoch,
    createdAt: iso(r.created_at),
    ...retentionView(r),
  };
}

/**
 * One page of a chat's messages with after < seq < before, not expired, in
 * paging order (returned ascending). With `member`: only messages from that
 * user's membership intervals, each with that device's own key (ListMessages);
 * without: every message, no key (CatchUpMessages, which applies each
 * device's intervals itself). A page is sized by bytes as well as count
 * (`maxBytes`, default MAX_PAGE_BYTES): rows are taken in paging order while
 * their running size fits, and the first row always (one message is at most
 * ~350 KiB). `hasMore`: a row was left out, by the count or the byte budget.
 */
export async function readPage(
  deps: ChatDeps,
  o: { chatId: string; after: number; before: number; forwards: boolean; limit: number; member?: Actor; maxBytes?: number },
): Promise<{ rows: PageRow[]; hasMore: boolean }> {
  const dir = o.forwards ? 'ASC' : 'DESC';
  const keyJoin = o.member ? 'LEFT JOIN chat.message_keys k ON k.chat_id = m.chat_id AND k.seq = m.seq AND k.device_id = ?' : '';
  const memberOnly = o.member
    ? `AND EXISTS (SELECT 1 FROM chat.chat_members i
                   WHERE i.chat_id = m.chat_id AND i.user_id = ? AND m.seq > i.joined_seq AND (i.left_seq IS NULL OR m.seq <= i.left_seq))`
    : '';
  const rows = await deps.db.query<PageRow & { fetched: string }>(
    `SELECT p.seq, p.message_id, p.sender_user_id, p.sender_device_id, p.epoch, p.envelope, p.created_at, p.wrapped_key, p.fetched,
            p.removed, p.tombstone, p.expires_at
     FROM (
       SELECT y.*, sum(y.bytes) OVER (ORDER BY y.seq ${dir} ROWS UNBOUNDED PRECEDING) AS running,
              row_number() OVER (ORDER BY y.seq ${dir}) AS rn, count(*) OVER () AS fetched
       FROM (
         SELECT m.seq, m.message_id, m.sender_user_id, m.sender_device_id, m.epoch, e.envelope, m.created_at, ${o.member ? 'k.wrapped_key' : 'NULL::text AS wrapped_key'},
                m.removed, m.tombstone, m.expires_at,
                COALESCE(octet_length(e.envelope), 0) + ${o.member ? 'COALESCE(octet_length(k.wrapped_key), 0) + ' : ''}${ROW_OVERHEAD_BYTES} AS bytes
         FROM chat.messages m
         CROSS JOIN LATERAL (SELECT (e.data->'${POSTED.envelope}')::text AS envelope FROM chat.events e WHERE e.position = m.event_position OFFSET 0) e
         ${keyJoin}
         WHERE m.chat_id = ? AND m.seq > ? AND m.seq < ? AND (m.expires_at IS NULL OR m.expires_at > ?)
           ${memberOnly}
         ORDER BY m.seq ${dir} LIMIT ?
       ) y
     ) p
     WHERE p.rn = 1 OR p.running <= ?
     ORDER BY p.seq ${dir}`,
    [
      ...(o.member ? [o.member.deviceId] : []),
      o.chatId,
      o.after,
      o.before,
      nowIso(deps),
      ...(o.member ? [o.member.userId] : []),
      o.limit + 1,
      o.maxBytes ?? maxPageBytes(deps.settings),
    ],
  );
  const page = rows.slice(0, o.limit);
  const fetched = rows.length > 0 ? Number(rows[0]!.fetched) : 0;
  if (!o.forwards) page.reverse();
  return { rows: page, hasMore: fetched > page.length };
}
