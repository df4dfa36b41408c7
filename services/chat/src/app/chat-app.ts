// Size: past 400 lines (~970; the send path lives in send/message-writer.ts)
// because every chat use case still lives in this one class; splitting it by
// use case (and one command-handling path) is
// issue #15 (step 12), which names this file. Steps 8 and 10 added the
// signed-leave and v2-record paths and the byte-sized history pages here
// rather than start that split half-way.
//
// Command and query handlers of the chat context: lock → load → decide →
// append (projections run in the same transaction; the outbox publishes after
// commit).
//
// Every write to a chat first takes its `chats` row lock, so all writers of
// one chat (senders, membership changes, the identity consumer) are
// serialised on that row and decide on the state as of the lock; writers of
// different chats never wait for each other. Sends are group-committed by
// send/message-writer.ts: under the same lock each takes the next `last_seq`
// (gap-free: a rollback gives the numbers back) and MessagePosted goes to the
// chat's message log with stream version = seq.
//
// Past 400 lines on purpose: it is the chat context's whole application
// layer (every command and query handler with the SQL of its read path), kept
// beside the helpers they share (locking, directory look-ups, signer checks);
// the rules themselves live in the pure decider and validation modules.
import {
  ConcurrencyError,
  failedPrecondition,
  invalidArgument,
  isUniqueViolation,
  notFound,
  permissionDenied,
  type Database,
  type EventMetadata,
  type EventStore,
  type IncomingEvent,
  type Logger,
  type Sql,
  type StoredEvent,
  type Tx,
} from '@bil/runtime';
import {
  chatDecider,
  chatStream,
  type ChatCommand,
  type ChatState,
  type ChatType,
  type Directory,
  type EpochProposal,
  type LeaveProposal,
  type MemberEntry,
  type Role,
} from '../domain/chat/chat.js';
import { readsDecider, readsStream } from '../domain/reads/reads.js';
import { MessageWriter, type SendResult } from './send/message-writer.js';
import {
  MAX_EPOCH_KEYS,
  epochSignatureValid,
  leaveSignatureValid,
  parseEnvelope,
  parseEpochRecord,
  parseLeave,
  personalChatId,
  refusePlaintextTitle,
  validateLimit,
  validateSeq,
  validateUuid,
  validateWrappedKeys,
  type SignedLeave,
} from '../domain/validation.js';

export interface Actor {
  userId: string;
  deviceId: string;
  sessionId: string;
}

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
}

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
}

export interface EpochView {
  epoch: number;
  recordHash: string;
  record: string;
  wrappedKey: string;
  signerUserId: string;
  signerDeviceId: string;
  createdAt: string;
}

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

/**
 * The byte budget of one ListMessages page: the envelopes and wrapped keys of
 * a page add up to at most this (each row counted with ROW_OVERHEAD_BYTES for
 * its other fields), the first row always included. Well under the 8 MiB a
 * gRPC client of chat accepts (runtime clientOptions), whatever the count.
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;
const ROW_OVERHEAD_BYTES = 512;

/** Upper bound of GetUnread's max_envelopes_per_chat. */
export const MAX_UNREAD_ENVELOPES = 50;

interface UnreadMessageRow {
  seq: number;
  message_id: string;
  sender_user_id: string;
  sender_device_id: string;
  epoch: number;
  /** The envelope's JSON text, from its event. */
  envelope: string;
  created_at: string;
  wrapped_key: string | null;
}

export type { SendResult } from './send/message-writer.js';

export interface ChatSettings {
  maxGroupMembers: number;
  /** The byte budget of a page of messages (default MAX_PAGE_BYTES; tests lower it). */
  maxPageBytes?: number;
}

export interface MemberInput {
  userId: unknown;
  role: Role | undefined;
}

const chatNotFound = () => notFound('chat_not_found', 'no such chat');
const iso = (d: Date | string) => new Date(d).toISOString();

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
}

const CHAT_VIEW_SQL = `SELECT c.chat_id, c.type, c.title, c.created_by, c.created_at, c.last_seq, c.last_activity_at, c.epoch,
         c.epoch_rotation_required, c.member_count, c.pair_key, m.role, m.joined_seq, COALESCE(r.last_read_seq, 0) AS last_read_seq
  FROM chat.chat_members m
  JOIN chat.chats c ON c.chat_id = m.chat_id AND c.status = 'active'
  LEFT JOIN chat.message_reads r ON r.chat_id = m.chat_id AND r.user_id = m.user_id
  WHERE m.user_id = ? AND m.left_seq IS NULL`;

function unreadOf(lastSeq: number, lastRead: number, joinedSeq: number): number {
  return Math.max(0, lastSeq - Math.max(lastRead, joinedSeq));
}

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
  };
}

function pageToken(r: { last_activity_at: Date; chat_id: string }): string {
  return Buffer.from(JSON.stringify([iso(r.last_activity_at), r.chat_id])).toString('base64url');
}

function parsePageToken(raw: unknown): [string, string] | null {
  if (raw === undefined || raw === '') return null;
  try {
    const [at, id] = JSON.parse(Buffer.from(String(raw), 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof at === 'string' && !Number.isNaN(Date.parse(at)) && typeof id === 'string') return [at, validateUuid(id, 'page_token')];
  } catch {
    // fall through
  }
  throw invalidArgument('invalid_page_token', 'page_token is not one this service issued', { field: 'page_token' });
}

function parseRole(raw: Role | undefined, def: Role): Role {
  if (raw === undefined) return def;
  if (raw !== 'owner' && raw !== 'admin' && raw !== 'member') throw invalidArgument('invalid_role', 'role must be owner, admin or member', { field: 'role' });
  return raw;
}

export class ChatApp {
  private readonly writer: MessageWriter;

  constructor(
    private readonly db: Database,
    private readonly store: EventStore,
    private readonly settings: ChatSettings,
    private readonly logger: Logger,
  ) {
    this.writer = new MessageWriter(db, store);
  }

  private get maxPageBytes(): number {
    return this.settings.maxPageBytes ?? MAX_PAGE_BYTES;
  }

  // --- chats and membership --------------------------------------------------

  async createPersonalChat(actor: Actor, rawPeer: unknown): Promise<{ chat: ChatView; created: boolean }> {
    const peer = validateUuid(rawPeer, 'peer_user_id');
    if (peer === actor.userId) throw invalidArgument('invalid_peer', 'a personal chat needs another user', { field: 'peer_user_id' });
    const known = await this.knownUsers(this.db, [peer]);
    if (!known.has(peer)) throw notFound('user_not_found', 'no such user');
    const chatId = personalChatId(actor.userId, peer);
    const events = await this.runChat(actor, chatId, () => ({
      type: 'CreatePersonalChat',
      chatId,
      userIds: [actor.userId, peer].sort() as [string, string],
      createdBy: actor.userId,
      now: new Date().toISOString(),
    }));
    return { chat: await this.getChat(actor, chatId), created: events.length > 0 };
  }

  async createGroup(
    actor: Actor,
    input: { chatId: unknown; title?: unknown; members: MemberInput[]; epochRecord: unknown; epochKeys: unknown },
  ): Promise<ChatView> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    refusePlaintextTitle(input.title);
    const members = this.memberEntries(input.members);
    const proposal = this.parseProposal(actor, input.epochRecord, input.epochKeys);
    await this.runChat(actor, chatId, async ({ tx, state }) => {
      const ids = [actor.userId, ...members.map((m) => m.userId)];
      // An existing id is refused by the decider (chat_exists) before any epoch rule, so skip the look-ups.
      const fresh = state.status === 'none';
      if (fresh) {
        await this.requireKnownUsers(tx, ids);
        await this.requireSigner(tx, actor, proposal.record);
      }
      return {
        type: 'CreateGroup',
        chatId,
        ownerUserId: actor.userId,
        ownerDeviceId: actor.deviceId,
        members,
        epoch: { ...proposal, directory: fresh ? await this.directory(tx, ids) : {} },
        maxMembers: this.settings.maxGroupMembers,
        now: new Date().toISOString(),
      };
    });
    return this.getChat(actor, chatId);
  }

  async addMembers(actor: Actor, input: { chatId: unknown; members: MemberInput[]; epochRecord: unknown; epochKeys: unknown }): Promise<ChatView> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    const members = this.memberEntries(input.members);
    await this.runChat(actor, chatId, async ({ tx, state, lastSeq }) => {
      requireMemberState(state, actor.userId);
      const proposal = this.parseProposal(actor, input.epochRecord, input.epochKeys);
      const ids = [...this.memberIds(state), ...members.map((m) => m.userId)];
      await this.requireKnownUsers(tx, members.map((m) => m.userId));
      await this.requireSigner(tx, actor, proposal.record);
      return {
        type: 'AddMembers',
        actorUserId: actor.userId,
        actorDeviceId: actor.deviceId,
        members,
        epoch: { ...proposal, directory: await this.directory(tx, ids) },
        lastSeq,
        maxMembers: this.settings.maxGroupMembers,
        now: new Date().toISOString(),
      };
    });
    return this.getChat(actor, chatId);
  }

  /**
   * Removes another member (an admin, with the next epoch) or lets the caller
   * leave (with their signed leave, verified here with the calling device's
   * key from the directory; the decider checks what it names).
   */
  async removeMember(
    actor: Actor,
    input: { chatId: unknown; userId: unknown; epochRecord: unknown; epochKeys: unknown; leave?: unknown },
  ): Promise<{ chatId: string; epoch: number; epochRotationRequired: boolean }> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    const userId = validateUuid(input.userId, 'user_id');
    const withEpoch = typeof input.epochRecord === 'string' && input.epochRecord !== '';
    const leave = input.leave === undefined || input.leave === '' ? undefined : parseLeave(input.leave);
    let after = { status: 'none' } as ChatState;
    await this.runChat(
      actor,
      chatId,
      async ({ tx, state, lastSeq }) => {
        requireMemberState(state, actor.userId);
        let epoch: EpochProposal | undefined;
        if (withEpoch) {
          const proposal = this.parseProposal(actor, input.epochRecord, input.epochKeys);
          await this.requireSigner(tx, actor, proposal.record);
          epoch = { ...proposal, directory: await this.directory(tx, this.memberIds(state)) };
        }
        let leaveProposal: LeaveProposal | undefined;
        if (leave) {
          await this.requireLeaveSigner(tx, actor, leave);
          leaveProposal = { leave, storedEpochHash: await this.storedEpochHash(tx, chatId, leave.epoch) };
        }
        return {
          type: 'RemoveMember',
          actorUserId: actor.userId,
          actorDeviceId: actor.deviceId,
          userId,
          epoch,
          leave: leaveProposal,
          lastSeq,
          now: new Date().toISOString(),
        };
      },
      (state) => (after = state),
    );
    if (after.status !== 'active') throw chatNotFound();
    return { chatId, epoch: after.epoch, epochRotationRequired: after.rotationRequired };
  }

  async changeRole(actor: Actor, input: { chatId: unknown; userId: unknown; role: Role | undefined }): Promise<MemberView> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    const userId = validateUuid(input.userId, 'user_id');
    const role = parseRole(input.role, 'member');
    await this.runChat(actor, chatId, () => ({ type: 'ChangeRole', actorUserId: actor.userId, userId, role, now: new Date().toISOString() }));
    const member = (await this.members(this.db, chatId)).find((m) => m.userId === userId);
    if (!member) throw notFound('member_not_found', 'this user is not a member');
    return member;
  }

  async deleteChat(actor: Actor, rawChatId: unknown): Promise<void> {
    const chatId = validateUuid(rawChatId, 'chat_id');
    await this.runChat(actor, chatId, () => ({ type: 'DeleteChat', actorUserId: actor.userId, now: new Date().toISOString() }));
  }

  // --- group epochs ----------------------------------------------------------

  async publishEpoch(actor: Actor, input: { chatId: unknown; epochRecord: unknown; epochKeys: unknown }): Promise<{ epoch: number; recordHash: string }> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    const proposal = this.parseProposal(actor, input.epochRecord, input.epochKeys);
    await this.runChat(actor, chatId, async ({ tx, state }) => {
      requireMemberState(state, actor.userId);
      await this.requireSigner(tx, actor, proposal.record);
      return {
        type: 'PublishEpoch',
        actorUserId: actor.userId,
        actorDeviceId: actor.deviceId,
        epoch: { ...proposal, directory: await this.directory(tx, this.memberIds(state)) },
        now: new Date().toISOString(),
      };
    });
    return { epoch: proposal.record.epoch, recordHash: proposal.record.hash };
  }

  async addEpochKeys(actor: Actor, input: { chatId: unknown; epoch: unknown; epochKeys: unknown }): Promise<number> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    const epoch = validateSeq(input.epoch, 'epoch');
    const keys = validateWrappedKeys(input.epochKeys, 'epoch_keys', MAX_EPOCH_KEYS);
    try {
      await this.runChat(actor, chatId, async ({ tx, state }) => ({
        type: 'AddEpochKeys',
        actorUserId: actor.userId,
        epoch,
        keys,
        directory: state.status === 'active' && state.members[actor.userId] ? await this.directory(tx, this.memberIds(state)) : {},
        now: new Date().toISOString(),
      }));
    } catch (err) {
      if (isUniqueViolation(err, 'group_keys_pkey')) throw failedPrecondition('epoch_key_exists', 'a device already has a key for this epoch');
      throw err;
    }
    return keys.length;
  }

  async listEpochs(
    actor: Actor,
    input: { chatId: unknown; afterEpoch: unknown; limit: unknown },
  ): Promise<{ epochs: EpochView[]; currentEpoch: number; hasMore: boolean }> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    const after = validateSeq(input.afterEpoch ?? 0, 'after_epoch');
    const limit = validateLimit(input.limit, 100, 100);
    const access = await this.access(this.db, actor, chatId);
    // Sized by bytes as well as count, as ListMessages (MAX_PAGE_BYTES): a 1,000-member record is megabytes,
    // so rows are taken in epoch order while their running size fits, the first always.
    const rows = await this.db.query<{
      epoch: number;
      record_hash: string;
      record: unknown;
      signer_user_id: string;
      signer_device_id: string;
      created_at: Date;
      wrapped_key: string | null;
      fetched: string;
    }>(
      `SELECT p.epoch, p.record_hash, p.record, p.signer_user_id, p.signer_device_id, p.created_at, p.wrapped_key, p.fetched
       FROM (
         SELECT y.*, sum(y.bytes) OVER (ORDER BY y.epoch ROWS UNBOUNDED PRECEDING) AS running,
                row_number() OVER (ORDER BY y.epoch) AS rn, count(*) OVER () AS fetched
         FROM (
           SELECT g.epoch, g.record_hash, g.record, g.signer_user_id, g.signer_device_id, g.created_at, k.wrapped_key,
                  octet_length(g.record::text) + COALESCE(octet_length(k.wrapped_key), 0) + ${ROW_OVERHEAD_BYTES} AS bytes
           FROM chat.group_epochs g
           LEFT JOIN chat.group_keys k ON k.chat_id = g.chat_id AND k.epoch = g.epoch AND k.device_id = ?
           WHERE g.chat_id = ? AND g.epoch > ? ORDER BY g.epoch LIMIT ?
         ) y
       ) p
       WHERE p.rn = 1 OR p.running <= ?
       ORDER BY p.epoch`,
      [actor.deviceId, chatId, after, limit + 1, this.maxPageBytes],
    );
    const page = rows.slice(0, limit);
    const fetched = rows.length > 0 ? Number(rows[0]!.fetched) : 0;
    return {
      epochs: page.map((r) => ({
        epoch: r.epoch,
        recordHash: r.record_hash,
        record: JSON.stringify(r.record),
        wrappedKey: r.wrapped_key ?? '',
        signerUserId: r.signer_user_id,
        signerDeviceId: r.signer_device_id,
        createdAt: iso(r.created_at),
      })),
      currentEpoch: access.epoch,
      // More exist when a row was left out, by the count (limit + 1 fetched) or by the byte budget.
      hasMore: fetched > page.length,
    };
  }

  // --- messages --------------------------------------------------------------

  /**
   * The hot path: validated here, then written by the group committer
   * (send/message-writer.ts): O(1) in the chat's history and member count,
   * batched with concurrent sends into one transaction.
   */
  async sendMessage(actor: Actor, input: { chatId: unknown; messageId: unknown; envelope: unknown; wrappedKeys: unknown }): Promise<SendResult> {
    return this.writer.send({
      userId: actor.userId,
      deviceId: actor.deviceId,
      chatId: validateUuid(input.chatId, 'chat_id'),
      messageId: validateUuid(input.messageId, 'message_id'),
      envelope: parseEnvelope(input.envelope),
      wrappedKeys: validateWrappedKeys(input.wrappedKeys ?? [], 'wrapped_keys'),
    });
  }

  async listMessages(
    actor: Actor,
    input: { chatId: unknown; afterSeq?: unknown; beforeSeq?: unknown; limit: unknown },
  ): Promise<{ messages: MessageView[]; hasMore: boolean; lastSeq: number }> {
    const chatId = validateUuid(input.chatId, 'chat_id');
    const limit = validateLimit(input.limit, 50, 200);
    const access = await this.access(this.db, actor, chatId);
    const forwards = input.afterSeq !== undefined;
    const after = forwards ? validateSeq(input.afterSeq, 'after_seq') : 0;
    const before = input.beforeSeq !== undefined ? validateSeq(input.beforeSeq, 'before_seq') : access.lastSeq + 1;
    // Only messages from the caller's membership intervals; each row with the calling device's own key only.
    // A page is sized by bytes as well as count (MAX_PAGE_BYTES): rows are taken in paging order while
    // their running size fits, and the first row always (one message is at most ~350 KiB).
    const rows = await this.db.query<{
      seq: string;
      message_id: string;
      sender_user_id: string;
      sender_device_id: string;
      epoch: number;
      /** The envelope's JSON text, from its event (the message row refers to it). */
      envelope: string;
      created_at: Date;
      wrapped_key: string | null;
      fetched: string;
    }>(
      `SELECT p.seq, p.message_id, p.sender_user_id, p.sender_device_id, p.epoch, p.envelope, p.created_at, p.wrapped_key, p.fetched
       FROM (
         SELECT y.*, sum(y.bytes) OVER (ORDER BY y.seq ${forwards ? 'ASC' : 'DESC'} ROWS UNBOUNDED PRECEDING) AS running,
                row_number() OVER (ORDER BY y.seq ${forwards ? 'ASC' : 'DESC'}) AS rn, count(*) OVER () AS fetched
         FROM (
           SELECT m.seq, m.message_id, m.sender_user_id, m.sender_device_id, m.epoch, e.envelope, m.created_at, k.wrapped_key,
                  octet_length(e.envelope) + COALESCE(octet_length(k.wrapped_key), 0) + ${ROW_OVERHEAD_BYTES} AS bytes
           FROM chat.messages m
           CROSS JOIN LATERAL (SELECT (e.data->'envelope')::text AS envelope FROM chat.events e WHERE e.position = m.event_position OFFSET 0) e
           LEFT JOIN chat.message_keys k ON k.chat_id = m.chat_id AND k.seq = m.seq AND k.device_id = ?
           WHERE m.chat_id = ? AND m.seq > ? AND m.seq < ?
             AND EXISTS (SELECT 1 FROM chat.chat_members i
                         WHERE i.chat_id = m.chat_id AND i.user_id = ? AND m.seq > i.joined_seq AND (i.left_seq IS NULL OR m.seq <= i.left_seq))
           ORDER BY m.seq ${forwards ? 'ASC' : 'DESC'} LIMIT ?
         ) y
       ) p
       WHERE p.rn = 1 OR p.running <= ?
       ORDER BY p.seq ${forwards ? 'ASC' : 'DESC'}`,
      [actor.deviceId, chatId, after, before, actor.userId, limit + 1, this.maxPageBytes],
    );
    const page = rows.slice(0, limit);
    const fetched = rows.length > 0 ? Number(rows[0]!.fetched) : 0;
    if (!forwards) page.reverse();
    return {
      messages: page.map((r) => ({
        chatId,
        seq: Number(r.seq),
        messageId: r.message_id,
        senderUserId: r.sender_user_id,
        senderDeviceId: r.sender_device_id,
        envelope: r.envelope,
        wrappedKey: r.wrapped_key ?? '',
        epoch: r.epoch,
        createdAt: iso(r.created_at),
      })),
      // More exist when a row was left out, by the count (limit + 1 fetched) or by the byte budget.
      hasMore: fetched > page.length,
      lastSeq: access.lastSeq,
    };
  }

  // --- read state ------------------------------------------------------------

  async markRead(actor: Actor, rawChatId: unknown, rawSeq: unknown): Promise<{ lastReadSeq: number; unreadCount: number }> {
    const chatId = validateUuid(rawChatId, 'chat_id');
    const seq = validateSeq(rawSeq, 'seq');
    const access = await this.access(this.db, actor, chatId);
    await this.store.handle(
      readsDecider,
      readsStream(chatId, actor.userId),
      { type: 'MarkRead', chatId, userId: actor.userId, seq, lastSeq: access.lastSeq, now: new Date().toISOString() },
      { metadata: meta(actor) },
    );
    const after = await this.access(this.db, actor, chatId);
    return { lastReadSeq: after.lastReadSeq, unreadCount: unreadOf(after.lastSeq, after.lastReadSeq, after.joinedSeq) };
  }

  /**
   * One statement whatever the number of chats: the caller's memberships with
   * unread messages (window totals over all of them), one page of those
   * chats, and per chat a LATERAL index scan of its newest unread messages
   * (each with the calling device's own wrapped key).
   */
  async getUnread(
    actor: Actor,
    input: { limit: unknown; maxEnvelopesPerChat?: unknown; pageToken?: unknown },
  ): Promise<{ totalUnread: number; unreadChats: number; chats: UnreadView[]; nextPageToken: string }> {
    const limit = validateLimit(input.limit, 100, 500);
    const rawMax = input.maxEnvelopesPerChat ?? 0;
    if (!Number.isInteger(rawMax) || (rawMax as number) < 0 || (rawMax as number) > MAX_UNREAD_ENVELOPES) {
      throw invalidArgument('invalid_max_envelopes_per_chat', `max_envelopes_per_chat must be 0 to ${MAX_UNREAD_ENVELOPES}`, { field: 'max_envelopes_per_chat' });
    }
    const maxEnvelopes = rawMax as number;
    const cursor = parsePageToken(input.pageToken);
    await this.requireUsableDevice(this.db, actor);
    const rows = await this.db.query<{
      chat_id: string | null;
      type: ChatType;
      title: string;
      last_seq: string;
      last_activity_at: Date;
      read_to: string;
      total: string | null;
      n: string;
      msgs: UnreadMessageRow[] | null;
    }>(
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
                  'epoch', x.epoch, 'envelope', x.envelope, 'created_at', x.created_at, 'wrapped_key', x.wrapped_key) ORDER BY x.seq) AS msgs
         FROM (
           SELECT mm.seq, mm.message_id, mm.sender_user_id, mm.sender_device_id, mm.epoch, ev.envelope, mm.created_at, k.wrapped_key
           FROM chat.messages mm
           CROSS JOIN LATERAL (SELECT (ev.data->'envelope')::text AS envelope FROM chat.events ev WHERE ev.position = mm.event_position OFFSET 0) ev
           LEFT JOIN chat.message_keys k ON k.chat_id = mm.chat_id AND k.seq = mm.seq AND k.device_id = ?
           WHERE mm.chat_id = p.chat_id AND mm.seq > p.read_to
           ORDER BY mm.seq DESC LIMIT ?
         ) x
       ) e ON true
       ORDER BY p.last_activity_at DESC, p.chat_id DESC LIMIT ?`,
      [actor.userId, ...(cursor ?? []), limit + 1, actor.deviceId, maxEnvelopes, limit + 1],
    );
    const first = rows[0];
    const found = rows.filter((r) => r.chat_id !== null);
    const page = found.slice(0, limit);
    // The envelopes of one answer share the page byte budget: past it, a chat keeps only its newest
    // unread envelopes that still fit (possibly none); its counts stay exact.
    let budget = this.maxPageBytes;
    for (const r of page) {
      const msgs = r.msgs ?? [];
      let keep = 0;
      for (let i = msgs.length - 1; i >= 0; i--) {
        const bytes = msgs[i]!.envelope.length + (msgs[i]!.wrapped_key?.length ?? 0) + ROW_OVERHEAD_BYTES;
        if (bytes > budget) break;
        budget -= bytes;
        keep++;
      }
      r.msgs = msgs.slice(msgs.length - keep);
    }
    return {
      totalUnread: first ? Number(first.total) : 0,
      unreadChats: first ? Number(first.n) : 0,
      chats: page.map((r) => {
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
            envelope: m.envelope,
            wrappedKey: m.wrapped_key ?? '',
            epoch: Number(m.epoch),
            createdAt: iso(m.created_at),
          })),
        };
      }),
      nextPageToken: found.length > limit ? pageToken({ last_activity_at: page[page.length - 1]!.last_activity_at, chat_id: page[page.length - 1]!.chat_id! }) : '',
    };
  }

  // --- queries ---------------------------------------------------------------

  async getChat(actor: Actor, rawChatId: unknown): Promise<ChatView> {
    const chatId = validateUuid(rawChatId, 'chat_id');
    await this.requireUsableDevice(this.db, actor);
    const [row] = await this.db.query<ChatRow>(`${CHAT_VIEW_SQL} AND m.chat_id = ?`, [actor.userId, chatId]);
    if (!row) throw chatNotFound();
    const pending = row.type === 'group' ? await this.pendingLeaves(this.db, chatId) : [];
    return toChatView(row, actor.userId, await this.members(this.db, chatId), pending);
  }

  async listChats(actor: Actor, input: { type: ChatType | undefined; limit: unknown; pageToken: unknown }): Promise<{ chats: ChatView[]; nextPageToken: string }> {
    const limit = validateLimit(input.limit, 50, 100);
    const cursor = parsePageToken(input.pageToken);
    await this.requireUsableDevice(this.db, actor);
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
    const rows = await this.db.query<ChatRow>(`${sql} ORDER BY c.last_activity_at DESC, c.chat_id DESC LIMIT ?`, [...params, limit + 1]);
    const page = rows.slice(0, limit);
    return {
      chats: page.map((r) => toChatView(r, actor.userId)),
      nextPageToken: rows.length > limit ? pageToken(page[page.length - 1]!) : '',
    };
  }

  // --- the identity directory (a durable consumer of identity.v1.*) ---------

  /** Applies one identity event inside the consumer's transaction (idempotent). */
  async applyIdentityEvent(tx: Tx, event: IncomingEvent, prefix: string): Promise<void> {
    const subject = event.subject.slice(prefix.length);
    const p = event.payload as Record<string, string>;
    const now = new Date().toISOString();
    switch (subject) {
      case 'identity.v1.user.registered':
        await tx.query(`INSERT INTO chat.directory_users (user_id, status) VALUES (?, 'active') ON CONFLICT (user_id) DO NOTHING`, [p.userId]);
        return;
      case 'identity.v1.user.deleted': {
        await tx.query(
          `INSERT INTO chat.directory_users (user_id, status) VALUES (?, 'deleted')
           ON CONFLICT (user_id) DO UPDATE SET status = 'deleted', updated_at = now()`,
          [p.userId],
        );
        await tx.query(`UPDATE chat.directory_devices SET status = 'revoked', revoked_at = now() WHERE user_id = ? AND status = 'active'`, [p.userId]);
        for (const chatId of await this.chatsOf(tx, p.userId!, false)) {
          await this.executeChat(tx, chatId, (lastSeq) => ({ type: 'RemoveDeletedUser', userId: p.userId!, lastSeq, now }), {});
        }
        return;
      }
      case 'identity.v1.device.registered':
        await tx.query(`INSERT INTO chat.directory_users (user_id, status) VALUES (?, 'active') ON CONFLICT (user_id) DO NOTHING`, [p.userId]);
        await tx.query(
          `INSERT INTO chat.directory_devices (device_id, user_id, signing_key, status, registered_at)
           VALUES (?, ?, ?, 'active', ?) ON CONFLICT (device_id) DO NOTHING`,
          [p.deviceId, p.userId, p.signingKey, p.occurredAt ?? now],
        );
        return;
      case 'identity.v1.device.revoked': {
        await tx.query(
          `INSERT INTO chat.directory_devices (device_id, user_id, signing_key, status, registered_at, revoked_at)
           VALUES (?, ?, '', 'revoked', ?, ?)
           ON CONFLICT (device_id) DO UPDATE SET status = 'revoked', revoked_at = excluded.revoked_at`,
          [p.deviceId, p.userId, p.occurredAt ?? now, p.occurredAt ?? now],
        );
        for (const chatId of await this.chatsOf(tx, p.userId!, true)) {
          await this.executeChat(tx, chatId, () => ({ type: 'RequireRotationForDevice', userId: p.userId!, deviceId: p.deviceId!, now }), {});
        }
        return;
      }
      default:
        return; // other identity events don't concern chats
    }
  }

  // --- helpers ---------------------------------------------------------------

  /**
   * Lock → load → decide → append for one chat in its own transaction; a
   * creation race (two first appends) is retried, and decide is pure.
   */
  private async runChat(
    actor: Actor,
    chatId: string,
    build: (ctx: { tx: Tx; state: ChatState; lastSeq: number }) => ChatCommand | Promise<ChatCommand>,
    onState?: (state: ChatState) => void,
  ): Promise<StoredEvent[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.tx(async (tx) => {
          await this.requireUsableDevice(tx, actor);
          return this.executeChat(tx, chatId, (lastSeq, state) => build({ tx, state, lastSeq }), meta(actor), onState);
        });
      } catch (err) {
        if (!(err instanceof ConcurrencyError) || attempt >= 3) throw err;
      }
    }
  }

  private async executeChat(
    tx: Tx,
    chatId: string,
    build: (lastSeq: number, state: ChatState) => ChatCommand | Promise<ChatCommand>,
    metadata: EventMetadata,
    onState?: (state: ChatState) => void,
  ): Promise<StoredEvent[]> {
    const [locked] = await tx.query<{ last_seq: string }>(`SELECT last_seq FROM chat.chats WHERE chat_id = ? FOR UPDATE`, [chatId]);
    const stream = await this.store.load(tx, chatDecider, chatStream(chatId));
    const command = await build(locked ? Number(locked.last_seq) : 0, stream.state);
    const events = chatDecider.decide(command, stream.state);
    const state = events.reduce(chatDecider.evolve, stream.state);
    onState?.(state);
    return this.store.append(tx, stream, events, state, metadata);
  }

  private parseProposal(actor: Actor, rawRecord: unknown, rawKeys: unknown): Omit<EpochProposal, 'directory'> {
    const record = parseEpochRecord(rawRecord);
    const keys = validateWrappedKeys(rawKeys ?? [], 'epoch_keys', MAX_EPOCH_KEYS);
    if (record.signerUserId !== actor.userId || record.signerDeviceId !== actor.deviceId) {
      throw invalidArgument('epoch_signer_mismatch', 'the record must be signed by the calling device', { field: 'epoch_record' });
    }
    return { record, keys };
  }

  /** The calling device's signing key; it must be an active device the directory knows. */
  private async signingKey(q: Sql, actor: Actor): Promise<string> {
    const [row] = await q.query<{ signing_key: string }>(
      `SELECT signing_key FROM chat.directory_devices WHERE device_id = ? AND user_id = ? AND status = 'active'`,
      [actor.deviceId, actor.userId],
    );
    if (!row) throw failedPrecondition('unknown_device', 'the calling device is not (yet) an active device in the directory; retry shortly');
    return row.signing_key;
  }

  /** The record's signature must verify with the calling device's key. */
  private async requireSigner(q: Sql, actor: Actor, record: EpochProposal['record']): Promise<void> {
    if (!epochSignatureValid(record, await this.signingKey(q, actor))) {
      throw invalidArgument('invalid_epoch_signature', "the record's signature does not verify with the calling device's signing key", { field: 'epoch_record' });
    }
  }

  /** The leave's signature must verify with the calling device's key (whose ids the decider then matches against the leave). */
  private async requireLeaveSigner(q: Sql, actor: Actor, leave: SignedLeave): Promise<void> {
    if (!leaveSignatureValid(leave, await this.signingKey(q, actor))) {
      throw invalidArgument('invalid_leave_signature', "the leave's signature does not verify with the calling device's signing key", { field: 'leave' });
    }
  }

  /** The stored record hash of one epoch of a chat; "" when there is no such epoch. */
  private async storedEpochHash(q: Sql, chatId: string, epoch: number): Promise<string> {
    const [row] = await q.query<{ record_hash: string }>(`SELECT record_hash FROM chat.group_epochs WHERE chat_id = ? AND epoch = ?`, [chatId, epoch]);
    return row?.record_hash ?? '';
  }

  /** The signed leaves recorded since the chat's current epoch (pending until the next one), oldest first, as JSON text. */
  private async pendingLeaves(q: Sql, chatId: string): Promise<string[]> {
    const rows = await q.query<{ leave: unknown }>(
      `SELECT l.leave FROM chat.group_leaves l JOIN chat.chats c ON c.chat_id = l.chat_id AND c.epoch = l.recorded_epoch
       WHERE l.chat_id = ? ORDER BY l.left_seq, l.recorded_at, l.user_id`,
      [chatId],
    );
    return rows.map((r) => JSON.stringify(r.leave));
  }

  /** A device the directory knows as revoked (or as another user's) gets nothing. */
  private async requireUsableDevice(q: Sql, actor: Actor): Promise<void> {
    const [row] = await q.query<{ user_id: string; status: string }>(`SELECT user_id, status FROM chat.directory_devices WHERE device_id = ?`, [actor.deviceId]);
    if (row && (row.status !== 'active' || row.user_id !== actor.userId)) throw permissionDenied('device_revoked', 'this device was revoked');
  }

  /** Membership (current), the calling device, and the counters, in one query. */
  private async access(q: Sql, actor: Actor, chatId: string) {
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
      await this.requireUsableDevice(q, actor);
      throw chatNotFound();
    }
    if (row.device_status !== null && (row.device_status !== 'active' || row.device_user !== actor.userId)) {
      throw permissionDenied('device_revoked', 'this device was revoked');
    }
    return { type: row.type, lastSeq: Number(row.last_seq), epoch: row.epoch, joinedSeq: Number(row.joined_seq), lastReadSeq: Number(row.last_read_seq) };
  }

  /** Active devices of these users from the local directory (plus the sender's own row, to refuse a revoked sender). */
  private async directory(q: Sql, userIds: string[], sender?: Actor): Promise<Directory> {
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

  private async knownUsers(q: Sql, userIds: string[]): Promise<Set<string>> {
    const rows = await q.query<{ user_id: string }>(
      `SELECT user_id FROM chat.directory_users WHERE status = 'active' AND user_id IN (SELECT (jsonb_array_elements_text(?::jsonb))::uuid)`,
      [JSON.stringify(userIds)],
    );
    return new Set(rows.map((r) => r.user_id));
  }

  private async requireKnownUsers(q: Sql, userIds: string[]): Promise<void> {
    const known = await this.knownUsers(q, userIds);
    const unknown = userIds.filter((u) => !known.has(u));
    if (unknown.length) throw notFound('user_not_found', 'no such user', { user_ids: unknown });
  }

  private memberEntries(raw: MemberInput[]): MemberEntry[] {
    if (!Array.isArray(raw)) throw invalidArgument('invalid_members', 'members must be a list', { field: 'members' });
    if (raw.length > this.settings.maxGroupMembers) {
      throw failedPrecondition('too_many_members', `a group has at most ${this.settings.maxGroupMembers} members`, { limit: this.settings.maxGroupMembers });
    }
    return raw.map((m, i) => ({ userId: validateUuid(m.userId, `members[${i}].user_id`), role: parseRole(m.role, 'member') }));
  }

  private memberIds(state: ChatState): string[] {
    return state.status === 'active' ? Object.keys(state.members) : [];
  }

  private async members(q: Sql, chatId: string): Promise<MemberView[]> {
    const rows = await q.query<{ user_id: string; role: Role; joined_at: Date; joined_seq: string }>(
      `SELECT user_id, role, joined_at, joined_seq FROM chat.chat_members WHERE chat_id = ? AND left_seq IS NULL ORDER BY joined_seq, joined_at, user_id`,
      [chatId],
    );
    return rows.map((r) => ({ userId: r.user_id, role: r.role, joinedAt: iso(r.joined_at), joinedSeq: Number(r.joined_seq) }));
  }

  private async chatsOf(q: Sql, userId: string, groupsOnly: boolean): Promise<string[]> {
    const rows = await q.query<{ chat_id: string }>(
      `SELECT m.chat_id FROM chat.chat_members m JOIN chat.chats c ON c.chat_id = m.chat_id AND c.status = 'active'
       WHERE m.user_id = ? AND m.left_seq IS NULL ${groupsOnly ? `AND c.type = 'group'` : ''} ORDER BY m.chat_id`,
      [userId],
    );
    return rows.map((r) => r.chat_id);
  }
}

function requireMemberState(state: ChatState, userId: string): void {
  if (state.status !== 'active' || !state.members[userId]) throw chatNotFound();
}

function meta(actor: Actor): EventMetadata {
  return { actorUserId: actor.userId, actorDeviceId: actor.deviceId };
}
