// The chat context's look-ups that commands and queries share: the local
// identity directory (users, devices and their signing keys, kept by the
// identity consumer) and the caller's access to one chat. Reads only; every
// write goes through the event store.
import { failedPrecondition, invalidArgument, notFound, permissionDenied, type Sql } from '@bil/runtime';
import type { ChatType, Directory, EpochProposal } from '../domain/chat/chat.js';
import { epochSignatureValid, leaveSignatureValid, type SignedLeave } from '../domain/validation.js';
import { chatNotFound, type Actor } from './context.js';

// --- the directory -----------------------------------------------------------

/** The calling device's signing key; it must be an active device the directory knows. */
export async function signingKey(q: Sql, actor: Actor): Promise<string> {
  const [row] = await q.query<{ signing_key: string }>(
    `SELECT signing_key FROM chat.directory_devices WHERE device_id = ? AND user_id = ? AND status = 'active'`,
    [actor.deviceId, actor.userId],
  );
  if (!row) throw failedPrecondition('unknown_device', 'the calling device is not (yet) an active device in the directory; retry shortly');
  return row.signing_key;
}

/** The record's signature must verify with the calling device's key. */
export async function requireSigner(q: Sql, actor: Actor, record: EpochProposal['record']): Promise<void> {
  if (!epochSignatureValid(record, await signingKey(q, actor))) {
    throw invalidArgument('invalid_epoch_signature', "the record's signature does not verify with the calling device's signing key", { field: 'epoch_record' });
  }
}

/** The leave's signature must verify with the calling device's key (whose ids the decider then matches against the leave). */
export async function requireLeaveSigner(q: Sql, actor: Actor, leave: SignedLeave): Promise<void> {
  if (!leaveSignatureValid(leave, await signingKey(q, actor))) {
    throw invalidArgument('invalid_leave_signature', "the leave's signature does not verify with the calling device's signing key", { field: 'leave' });
  }
}

/** A device the directory knows as revoked (or as another user's) gets nothing. */
export async function requireUsableDevice(q: Sql, actor: Actor): Promise<void> {
  const [row] = await q.query<{ user_id: string; status: string }>(`SELECT user_id, status FROM chat.directory_devices WHERE device_id = ?`, [actor.deviceId]);
  if (row && (row.status !== 'active' || row.user_id !== actor.userId)) throw permissionDenied('device_revoked', 'this device was revoked');
}

/** Active devices of these users from the local directory (plus the sender's own row, to refuse a revoked sender). */
export async function directory(q: Sql, userIds: string[], sender?: Actor): Promise<Directory> {
  const rows = await q.query<{ user_id: string; device_id: string; signing_key: string; status: string }>(
    `SELECT user_id, device_id, signing_key, status FROM chat.directory_devices
     WHERE (status = 'active' AND user_id IN (SELECT (jsonb_array_elements_text(?::jsonb))::uuid)) OR device_id = ?
     ORDER BY device_id`,
    [JSON.stringify([...new Set(userIds)]), sender?.deviceId ?? '00000000-0000-0000-0000-000000000000'],
  );
  const out: Directory = {};
  for (const r of rows) {
    if (sender && r.device_id === sender.deviceId && (r.status !== 'active' || r.user_id !== sender.userId)) {
      throw permissionDenied('device_revoked', 'this device was revoked');
    }
    if (r.status === 'active') (out[r.user_id] ??= []).push({ deviceId: r.device_id, signingKey: r.signing_key });
  }
  return out;
}

export async function knownUsers(q: Sql, userIds: string[]): Promise<Set<string>> {
  const rows = await q.query<{ user_id: string }>(
    `SELECT user_id FROM chat.directory_users WHERE status = 'active' AND user_id IN (SELECT (jsonb_array_elements_text(?::jsonb))::uuid)`,
    [JSON.stringify(userIds)],
  );
  return new Set(rows.map((r) => r.user_id));
}

export async function requireKnownUsers(q: Sql, userIds: string[]): Promise<void> {
  const known = await knownUsers(q, userIds);
  const unknown = userIds.filter((u) => !known.has(u));
  if (unknown.length) throw notFound('user_not_found', 'no such user', { user_ids: unknown });
}

// --- chats and memberships ---------------------------------------------------

export interface Access {
  type: ChatType;
  lastSeq: number;
  epoch: number;
  joinedSeq: number;
  lastReadSeq: number;
}

/** Membership (current), the calling device, and the counters, in one query. */
export async function access(q: Sql, actor: Actor, chatId: string): Promise<Access> {
  const [row] = await q.query<{
    type: ChatType;
    last_seq: string;
    epoch: number;
    joined_seq: string;
    last_read_seq: string;
    device_user: string | null;
    device_status: string | null;
  }>(
    `SELECT c.type, c.last_seq, c.epoch, m.joined_seq, COALESCE(r.last_read_seq, 0) AS last_read_seq, d.user_id AS device_user, d.status AS device_status
     FROM chat.chats c
     JOIN chat.chat_members m ON m.chat_id = c.chat_id AND m.user_id = ? AND m.left_seq IS NULL
     LEFT JOIN chat.message_reads r ON r.chat_id = c.chat_id AND r.user_id = m.user_id
     LEFT JOIN chat.directory_devices d ON d.device_id = ?
     WHERE c.chat_id = ? AND c.status = 'active'`,
    [actor.userId, actor.deviceId, chatId],
  );
  if (!row) {
    await requireUsableDevice(q, actor);
    throw chatNotFound();
  }
  if (row.device_status !== null && (row.device_status !== 'active' || row.device_user !== actor.userId)) {
    throw permissionDenied('device_revoked', 'this device was revoked');
  }
  return { type: row.type, lastSeq: Number(row.last_seq), epoch: row.epoch, joinedSeq: Number(row.joined_seq), lastReadSeq: Number(row.last_read_seq) };
}

/** The stored record hash of one epoch of a chat; "" when there is no such epoch. */
export async function storedEpochHash(q: Sql, chatId: string, epoch: number): Promise<string> {
  const [row] = await q.query<{ record_hash: string }>(`SELECT record_hash FROM chat.group_epochs WHERE chat_id = ? AND epoch = ?`, [chatId, epoch]);
  return row?.record_hash ?? '';
}

/** The active chats a user is a current member of (groups only, or all), by id. */
export async function chatsOf(q: Sql, userId: string, groupsOnly: boolean): Promise<string[]> {
  const rows = await q.query<{ chat_id: string }>(
    `SELECT m.chat_id FROM chat.chat_members m JOIN chat.chats c ON c.chat_id = m.chat_id AND c.status = 'active'
     WHERE m.user_id = ? AND m.left_seq IS NULL ${groupsOnly ? `AND c.type = 'group'` : ''} ORDER BY m.chat_id`,
    [userId],
  );
  return rows.map((r) => r.chat_id);
}
