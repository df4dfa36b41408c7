// Read models of the chat context, updated in the append transaction and
// rebuilt from the events: `chats`, `chat_members` (membership intervals),
// `group_epochs`, `group_keys`, `group_leaves`, `messages`, `message_keys`,
// `message_reads`.
//
// Message and epoch rows are copied from the event rows inside PostgreSQL
// (INSERT … SELECT from chat.events by position), set-based for the whole
// batch: the envelope and wrapped keys cross the wire once, in the event
// insert, and a rebuild of a million messages runs the same statements
// 1,000 events at a time. A message row refers to its event for the
// envelope (`event_position`) rather than storing a second copy.
import type { Projection, Sql, StoredEvent } from '@bil/runtime';
import { chatStream, type ChatEvent } from '../../domain/chat/chat.js';
import type { ReadsEvent } from '../../domain/reads/reads.js';
import { eraseMessages } from '../retention/erase.js';
import { EPOCH_KEY as EK, EPOCH_KEYS as K, EPOCH_PUBLISHED as G, MEMBER_ENTRY as M, POSTED as P, WRAPPED_KEY as W } from '../sql-fields.js';

type Event = ChatEvent | ReadsEvent;
const CHAT_STREAM = chatStream('');

/**
 * The messages projection of a run of MessagePosted events, as CTEs reading
 * `ev(position, data)`: messages (a reference to their event, which holds
 * the envelope: written once), their wrapped keys, the sender's implicit read
 * marker (posting means having read the chat up to there), and the chat's
 * last_seq (live, the send path holds the chat's row lock). The send path
 * runs them in the event insert's own statement (Projection.inline: one round
 * trip); rebuilds through MESSAGES_PROJECTION_SQL. The chats are reached
 * through `= ANY` of their ids (index-bound whatever the statistics).
 */
export const MESSAGES_PROJECTION_CTES = `m AS (
       INSERT INTO chat.messages (chat_id, seq, message_id, sender_user_id, sender_device_id, epoch, event_position, created_at, expires_at, removed)
       SELECT (data->>'${P.chatId}')::uuid, (data->>'${P.seq}')::bigint, (data->>'${P.messageId}')::uuid, (data->>'${P.senderUserId}')::uuid,
              (data->>'${P.senderDeviceId}')::uuid, (data->>'${P.epoch}')::integer, position, (data->>'${P.occurredAt}')::timestamptz,
              (data->>'${P.expiresAt}')::timestamptz, data->'${P.envelope}' IS NULL
       FROM ev
       RETURNING chat_id, seq, sender_user_id, created_at
     ), k AS (
       INSERT INTO chat.message_keys (chat_id, seq, device_id, wrapped_key)
       SELECT (ev.data->>'${P.chatId}')::uuid, (ev.data->>'${P.seq}')::bigint, w."${W.deviceId}", w."${W.wrappedKey}"
       FROM ev, jsonb_to_recordset(ev.data->'${P.wrappedKeys}') AS w("${W.deviceId}" uuid, "${W.wrappedKey}" text)
     ), r AS (
       INSERT INTO chat.message_reads AS mr (chat_id, user_id, last_read_seq, updated_at)
       SELECT DISTINCT ON (chat_id, sender_user_id) chat_id, sender_user_id, seq, created_at FROM m ORDER BY chat_id, sender_user_id, seq DESC
       ON CONFLICT (chat_id, user_id) DO UPDATE SET last_read_seq = excluded.last_read_seq, updated_at = excluded.updated_at
       WHERE (mr.last_read_seq, mr.updated_at) < (excluded.last_read_seq, excluded.updated_at)
     ), last AS (
       SELECT DISTINCT ON (chat_id) chat_id, seq, created_at AS at FROM m ORDER BY chat_id, seq DESC
     ), c AS (
       UPDATE chat.chats c SET (last_seq, last_activity_at) = (SELECT x.seq, x.at FROM last x WHERE x.chat_id = c.chat_id)
       WHERE c.chat_id = ANY (ARRAY(SELECT chat_id FROM last)) AND c.last_seq < (SELECT x.seq FROM last x WHERE x.chat_id = c.chat_id)
       RETURNING 1
     )`;

/**
 * MESSAGES_PROJECTION_CTES over stored events (parameter: their positions as
 * a bigint array; each event by one primary-key probe: an IN list may hash a
 * scan of every event). Exported for the plan test.
 */
export const MESSAGES_PROJECTION_SQL = `WITH ev AS (
       SELECT e.position, e.data FROM unnest(?::bigint[]) AS p(position)
       CROSS JOIN LATERAL (SELECT e.position, e.data FROM chat.events e WHERE e.position = p.position OFFSET 0) e
     ), ${MESSAGES_PROJECTION_CTES}
     SELECT count(*) AS n FROM c`;

async function applyMessages(q: Sql, positions: string[]): Promise<void> {
  await q.query(MESSAGES_PROJECTION_SQL, [`{${positions.join(',')}}`]);
}

async function applyOne(q: Sql, stored: StoredEvent): Promise<void> {
  const ev = { type: stored.type, data: stored.data } as Event;
  switch (ev.type) {
    case 'ChatCreated': {
      const d = ev.data;
      const pairKey = d.chatType === 'personal' ? d.members.map((m) => m.userId).sort().join(':') : null;
      await q.query(
        `INSERT INTO chat.chats (chat_id, type, title, created_by, created_at, status, last_seq, last_activity_at, member_count, pair_key)
         VALUES (?, ?, ?, ?, ?, 'active', 0, ?, ?, ?)`,
        [d.chatId, d.chatType, d.title, d.createdBy, d.occurredAt, d.occurredAt, d.members.length, pairKey],
      );
      await q.query(
        `INSERT INTO chat.chat_members (chat_id, user_id, joined_version, role, joined_seq, joined_at)
         SELECT ?::uuid, m."${M.userId}", ?, m."${M.role}", 0, ?::timestamptz FROM jsonb_to_recordset(?::jsonb) AS m("${M.userId}" uuid, "${M.role}" text)`,
        [d.chatId, stored.streamVersion, d.occurredAt, JSON.stringify(d.members)],
      );
      return;
    }
    case 'MemberAdded': {
      const d = ev.data;
      await q.query(
        `INSERT INTO chat.chat_members (chat_id, user_id, joined_version, role, joined_seq, joined_at) VALUES (?, ?, ?, ?, ?, ?)`,
        [d.chatId, d.userId, stored.streamVersion, d.role, d.joinedSeq, d.occurredAt],
      );
      await q.query(`UPDATE chat.chats SET member_count = member_count + 1 WHERE chat_id = ?`, [d.chatId]);
      return;
    }
    case 'MemberRemoved': {
      const d = ev.data;
      await q.query(`UPDATE chat.chat_members SET left_seq = ?, left_at = ? WHERE chat_id = ? AND user_id = ? AND left_seq IS NULL`, [
        d.leftSeq,
        d.occurredAt,
        d.chatId,
        d.userId,
      ]);
      await q.query(`UPDATE chat.chats SET member_count = member_count - 1 WHERE chat_id = ?`, [d.chatId]);
      if (d.leave) {
        // Recorded at the chat's current epoch: pending until the next one is published.
        await q.query(
          `INSERT INTO chat.group_leaves (chat_id, recorded_epoch, user_id, device_id, leave, left_seq, recorded_at)
           SELECT c.chat_id, c.epoch, ?::uuid, (l.doc->'payload'->>'device_id')::uuid, l.doc, ?, ?
           FROM chat.chats c, (SELECT ?::jsonb AS doc) l WHERE c.chat_id = ?`,
          [d.userId, d.leftSeq, d.occurredAt, JSON.stringify(d.leave), d.chatId],
        );
      }
      return;
    }
    case 'RoleChanged':
      await q.query(`UPDATE chat.chat_members SET role = ? WHERE chat_id = ? AND user_id = ? AND left_seq IS NULL`, [
        ev.data.role,
        ev.data.chatId,
        ev.data.userId,
      ]);
      return;
    case 'ChatDeleted':
      await q.query(`UPDATE chat.chats SET status = 'deleted', member_count = 0 WHERE chat_id = ?`, [ev.data.chatId]);
      await q.query(
        `UPDATE chat.chat_members m SET left_seq = c.last_seq, left_at = ? FROM chat.chats c
         WHERE m.chat_id = ? AND m.left_seq IS NULL AND c.chat_id = m.chat_id`,
        [ev.data.occurredAt, ev.data.chatId],
      );
      return;
    case 'GroupEpochPublished':
      await q.query(
        `INSERT INTO chat.group_epochs (chat_id, epoch, record_hash, record, signer_user_id, signer_device_id, created_at)
         SELECT (e.data->>'${G.chatId}')::uuid, (e.data->>'${G.epoch}')::integer, e.data->>'${G.recordHash}', e.data->'${G.record}',
                (e.data->>'${G.signerUserId}')::uuid, (e.data->>'${G.signerDeviceId}')::uuid, (e.data->>'${G.occurredAt}')::timestamptz
         FROM chat.events e WHERE e.position = ?::bigint`,
        [stored.position],
      );
      await insertEpochKeys(q, stored.position);
      await q.query(`UPDATE chat.chats SET epoch = ?, epoch_rotation_required = false WHERE chat_id = ?`, [ev.data.epoch, ev.data.chatId]);
      return;
    case 'EpochKeysAdded':
      await insertEpochKeys(q, stored.position);
      return;
    case 'EpochRotationRequired':
      await q.query(`UPDATE chat.chats SET epoch_rotation_required = true WHERE chat_id = ?`, [ev.data.chatId]);
      return;
    case 'LegacyTitleCleared':
      await q.query(`UPDATE chat.chats SET title = '' WHERE chat_id = ?`, [ev.data.chatId]);
      return;
    case 'MessagePosted':
      return; // set-based, per batch (applyMessages)
    case 'DisappearingTimerSet':
      await q.query(`UPDATE chat.chats SET disappearing_ms = ?, timer_statement = COALESCE(?::jsonb, timer_statement) WHERE chat_id = ?`, [
        ev.data.disappearingMs,
        ev.data.statement ? JSON.stringify(ev.data.statement) : null,
        ev.data.chatId,
      ]);
      return;
    case 'MessageDeleted':
      // A message erased by its MessagePosted event's redaction (rebuilds see it removed already) keeps its tombstone here.
      await eraseMessages(q, ev.data.chatId, [ev.data.seq], ev.data.tombstone);
      return;
    case 'MessagesRead':
      await q.query(
        `INSERT INTO chat.message_reads AS mr (chat_id, user_id, last_read_seq, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (chat_id, user_id) DO UPDATE SET last_read_seq = excluded.last_read_seq, updated_at = excluded.updated_at
         WHERE (mr.last_read_seq, mr.updated_at) < (excluded.last_read_seq, excluded.updated_at)`,
        [ev.data.chatId, ev.data.userId, ev.data.lastReadSeq, ev.data.occurredAt],
      );
      return;
    default: {
      const unknown: never = ev;
      return unknown;
    }
  }
}

function insertEpochKeys(q: Sql, position: string) {
  return q.query(
    `INSERT INTO chat.group_keys (chat_id, epoch, device_id, user_id, wrapped_key)
     SELECT (e.data->>'${K.chatId}')::uuid, (e.data->>'${K.epoch}')::integer, k."${EK.deviceId}", k."${EK.userId}", k."${EK.wrappedKey}"
     FROM chat.events e, jsonb_to_recordset(e.data->'${K.keys}') AS k("${EK.deviceId}" uuid, "${EK.userId}" uuid, "${EK.wrappedKey}" text)
     WHERE e.position = ?::bigint`,
    [position],
  );
}

export const chatReadModels: Projection = {
  name: 'chat-read-models',
  tables: ['message_reads', 'message_keys', 'messages', 'group_leaves', 'group_keys', 'group_epochs', 'chat_members', 'chats'],
  inline: { types: ['MessagePosted'], ctes: MESSAGES_PROJECTION_CTES },
  async apply(q, events) {
    // Keep event order: runs of messages go set-based, everything else one by one.
    let run: string[] = [];
    const chatVersions = new Map<string, number>();
    for (const e of events) {
      if (e.type === 'MessagePosted') {
        run.push(e.position);
        continue;
      }
      if (run.length) await applyMessages(q, run);
      run = [];
      await applyOne(q, e);
      if (e.streamId.startsWith(CHAT_STREAM)) chatVersions.set(e.streamId.slice(CHAT_STREAM.length), e.streamVersion);
    }
    if (run.length) await applyMessages(q, run);
    // The chat stream's version on its row, in the same transaction: what the send path keys its states by.
    for (const [chatId, version] of chatVersions) {
      await q.query(`UPDATE chat.chats SET chat_version = ? WHERE chat_id = ? AND chat_version < ?`, [version, chatId, version]);
    }
  },
};
