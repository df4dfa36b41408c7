// The chat aggregate (stream `chat-<id>`): type, members and roles, the group
// epoch head, and whether a new epoch is required. Pure decider: no I/O; the
// application layer passes in what it looked up (the device directory, the
// chat's last seq under its row lock, the clock).
//
// Messages are decided here too (PostMessage → MessagePosted) because whether
// a message may be posted depends only on this state, but they are appended
// to the chat's message log (`messages-<id>`, version = seq), not to this
// stream: evolve ignores them, so the compact state stays small however long
// the history is.
//
// Size: past 400 lines on purpose: one aggregate, one decider. Every rule
// that decides on a chat's state (membership, roles, epochs, leaves, posts)
// reads the same state and is dispatched by the one exhaustive switch below
// (emmett style: a missing case does not compile); splitting it would scatter
// the invariants of one consistency boundary.
import { AppError, failedPrecondition, invalidArgument, notFound, permissionDenied, type Decider } from '@bil/runtime/domain';
import { mismatchedDevicesDetailsJson, type MismatchedDevicesDetails } from '@bil/proto/errors';
import type { Envelope, EpochRecord, SignedLeave, SignedTimerStatement, WrappedKeyInput } from '../validation.js';

export type ChatType = 'personal' | 'group';
export type Role = 'owner' | 'admin' | 'member';
export type RemovalReason = 'removed' | 'left' | 'account_deleted';
/** `member_removed` is legacy (removals without an epoch, before step 8); a removal by an admin now carries the next epoch. */
export type RotationReason = 'member_removed' | 'member_left' | 'device_revoked' | 'account_deleted';

export interface MemberEntry {
  userId: string;
  role: Role;
}

export interface EpochKey {
  userId: string;
  deviceId: string;
  wrappedKey: string;
}

export type ChatEvent =
  | {
      type: 'ChatCreated';
      /** `title`: always "" since step 8 (titles are encrypted in the epoch record); groups created before carry their plaintext title here. */
      data: { chatId: string; chatType: ChatType; title: string; createdBy: string; members: MemberEntry[]; occurredAt: string };
    }
  | { type: 'MemberAdded'; data: { chatId: string; userId: string; role: Role; addedBy: string; joinedSeq: number; occurredAt: string } }
  | {
      type: 'MemberRemoved';
      /** `leave`: the signed leave ({payload, signature}) as given, when the member left (reason `left`, since step 8). */
      data: { chatId: string; userId: string; removedBy: string; reason: RemovalReason; leftSeq: number; occurredAt: string; leave?: Record<string, unknown> };
    }
  /** A legacy group's plaintext title was dropped: its first v2 epoch record (encrypted metadata) was published. */
  | { type: 'LegacyTitleCleared'; data: { chatId: string; epoch: number; occurredAt: string } }
  | { type: 'RoleChanged'; data: { chatId: string; userId: string; role: Role; changedBy: string; occurredAt: string } }
  | { type: 'ChatDeleted'; data: { chatId: string; deletedBy: string; memberUserIds: string[]; occurredAt: string } }
  | {
      type: 'GroupEpochPublished';
      data: {
        chatId: string;
        epoch: number;
        recordHash: string;
        record: Record<string, unknown>;
        keys: EpochKey[];
        signerUserId: string;
        signerDeviceId: string;
        occurredAt: string;
      };
    }
  | { type: 'EpochKeysAdded'; data: { chatId: string; epoch: number; keys: EpochKey[]; addedBy: string; occurredAt: string } }
  | {
      type: 'EpochRotationRequired';
      data: { chatId: string; epoch: number; reason: RotationReason; userId: string; deviceId: string; occurredAt: string };
    }
  | {
      type: 'MessagePosted';
      data: {
        chatId: string;
        chatType: ChatType;
        seq: number;
        messageId: string;
        senderUserId: string;
        senderDeviceId: string;
        epoch: number;
        envelope: Envelope;
        wrappedKeys: WrappedKeyInput[];
        occurredAt: string;
        /** When the message expires (the chat's timer at send); absent when it never does. */
        expiresAt?: string;
      };
    }
  /** The chat's disappearing-message timer changed (0 = off); personal chats: with the setter's signed statement. */
  | {
      type: 'DisappearingTimerSet';
      data: { chatId: string; disappearingMs: number; setBy: string; occurredAt: string; statement?: Record<string, unknown>; version?: number };
    }
  /** Its sender deleted a message for everyone: its ciphertext and keys are erased (projection), the tombstone kept. */
  | {
      type: 'MessageDeleted';
      data: { chatId: string; seq: number; messageId: string; senderUserId: string; tombstone: Record<string, unknown>; occurredAt: string };
    };

/** A member's active devices as the chat service's directory knows them (from identity events). */
export interface DirectoryDevice {
  deviceId: string;
  signingKey: string;
}
export type Directory = Record<string, DirectoryDevice[]>;

/** A signed leave with what the app looked up for it; the signature was verified by the caller with the leaving device's key. */
export interface LeaveProposal {
  leave: SignedLeave;
  /** The stored record hash of the leave's `epoch`; "" when the chat has no such epoch. */
  storedEpochHash: string;
}

/** An epoch record proposed with its wrapped keys; the signature was verified by the caller. */
export interface EpochProposal {
  record: EpochRecord;
  keys: WrappedKeyInput[];
  /** Active devices of every member after the change. */
  directory: Directory;
}

export type ChatCommand =
  | { type: 'CreatePersonalChat'; chatId: string; userIds: [string, string]; createdBy: string; now: string }
  | {
      type: 'CreateGroup';
      chatId: string;
      ownerUserId: string;
      ownerDeviceId: string;
      members: MemberEntry[];
      epoch: EpochProposal;
      maxMembers: number;
      now: string;
    }
  | {
      type: 'AddMembers';
      actorUserId: string;
      actorDeviceId: string;
      members: MemberEntry[];
      epoch: EpochProposal;
      lastSeq: number;
      maxMembers: number;
      now: string;
    }
  | {
      type: 'RemoveMember';
      actorUserId: string;
      actorDeviceId: string;
      userId: string;
      /** Required to remove another member; a member leaving gives none (they can't sign the next record). */
      epoch?: EpochProposal;
      /** Required to leave (userId = actor): the caller's signed leave. */
      leave?: LeaveProposal;
      lastSeq: number;
      now: string;
    }
  | { type: 'ChangeRole'; actorUserId: string; userId: string; role: Role; now: string }
  | { type: 'DeleteChat'; actorUserId: string; now: string }
  | { type: 'PublishEpoch'; actorUserId: string; actorDeviceId: string; epoch: EpochProposal; now: string }
  | { type: 'AddEpochKeys'; actorUserId: string; epoch: number; keys: WrappedKeyInput[]; directory: Directory; now: string }
  | { type: 'RequireRotationForDevice'; userId: string; deviceId: string; now: string }
  | { type: 'RemoveDeletedUser'; userId: string; lastSeq: number; now: string }
  | { type: 'SetDisappearingTimer'; actorUserId: string; actorDeviceId: string; disappearingMs: number; statement: SignedTimerStatement | null; now: string }
  | {
      type: 'DeleteMessage';
      actorUserId: string;
      actorDeviceId: string;
      /** The stored message the request names (looked up under the chat's row lock); null when there is none the caller may see. */
      message: { seq: number; messageId: string; senderUserId: string; removed: boolean } | null;
      /** The signed tombstone as parsed (shape checked; the signature is checked by the app with the device's key). */
      tombstone: { chatId: string; messageId: string; senderUserId: string; senderDeviceId: string; document: Record<string, unknown> };
      now: string;
    }
  | {
      type: 'PostMessage';
      seq: number;
      messageId: string;
      senderUserId: string;
      senderDeviceId: string;
      envelope: Envelope;
      wrappedKeys: WrappedKeyInput[];
      /** Personal chats: the active devices of both users (the directory). */
      directory?: Directory;
      now: string;
    };

export interface MemberState {
  role: Role;
  joinedSeq: number;
  joinedAt: string;
  /** Groups: this member's devices listed in the current epoch record. */
  devices: string[];
}

export interface ChatFields {
  chatId: string;
  chatType: ChatType;
  /** Legacy plaintext title of a group created before step 8, until its first v2 record; "" otherwise. */
  title: string;
  createdBy: string;
  createdAt: string;
  /** Current members by user id. Sends load only the sender's entry (see the app layer). */
  members: Record<string, MemberState>;
  /** Personal chats: both user ids, sorted (kept after an account deletion). */
  pair: string[];
  epoch: number;
  headHash: string;
  rotationRequired: boolean;
  /** The disappearing-message timer in ms (0 or absent = off; absent in states stored before issue #17). */
  disappearingMs?: number;
  /** Personal chats: the version of the stored signed timer statement (absent before the first). */
  timerVersion?: number;
}

export type ChatState = { status: 'none' } | ({ status: 'active' } & ChatFields) | ({ status: 'deleted' } & ChatFields);

export type ActiveChat = { status: 'active' } & ChatFields;

export const chatStream = (chatId: string) => `chat-${chatId}`;
export const messageLogStream = (chatId: string) => `messages-${chatId}`;

const chatNotFound = () => notFound('chat_not_found', 'no such chat');
const isAdmin = (role: Role | undefined) => role === 'owner' || role === 'admin';

/** The chat as a current member sees it; anyone else learns nothing (not even that it exists). */
function requireMember(state: ChatState, userId: string): { chat: ActiveChat; me: MemberState } {
  if (state.status !== 'active') throw chatNotFound();
  const me = state.members[userId];
  if (!me) throw chatNotFound();
  return { chat: state, me };
}

function requireGroup(chat: ActiveChat): void {
  if (chat.chatType !== 'group') throw failedPrecondition('not_a_group', 'personal chats have no membership changes, roles or epochs');
}

function requireAdmin(me: MemberState): void {
  if (!isAdmin(me.role)) throw permissionDenied('not_an_admin', 'only the owner and admins may do this');
}

/** The devices (device id → user id) expected but not given, and given but not expected. */
function deviceDiff(expected: Map<string, string>, given: Map<string, string>): MismatchedDevicesDetails {
  const missingDevices = [...expected].filter(([d]) => !given.has(d)).map(([deviceId, userId]) => ({ userId, deviceId }));
  const extraDevices = [...given].filter(([d]) => !expected.has(d)).map(([deviceId, userId]) => ({ userId, deviceId }));
  return { missingDevices, extraDevices };
}

const mismatched = (d: MismatchedDevicesDetails) => d.missingDevices.length > 0 || d.extraDevices.length > 0;

function mismatchedDevices(diff: MismatchedDevicesDetails, what: string): AppError {
  return failedPrecondition(
    'mismatched_devices',
    `${what} do not match the members' current devices; refresh the key directory and retry`,
    mismatchedDevicesDetailsJson(diff),
  );
}

/**
 * The rules every new epoch record obeys (protocol.md, "Group chats: epochs"),
 * checked against the membership after the change it comes with:
 * chain position, chat, signer, members and roles, devices, wrapped keys.
 */
function checkEpoch(
  chatId: string,
  current: { epoch: number; headHash: string },
  members: Record<string, Pick<MemberState, 'role'>>,
  proposal: EpochProposal,
  signer: { userId: string; deviceId: string },
): EpochKey[] {
  const r = proposal.record;
  if (r.chatId !== chatId) throw invalidArgument('epoch_chat_mismatch', 'the epoch record names another chat', { field: 'epoch_record' });
  if (r.epoch !== current.epoch + 1) {
    throw failedPrecondition('unexpected_epoch', `the next epoch is ${current.epoch + 1}`, { current_epoch: current.epoch, expected_epoch: current.epoch + 1 });
  }
  if (r.prevHash !== current.headHash) {
    throw failedPrecondition('epoch_prev_hash_mismatch', 'prev_hash is not the hash of the current epoch record', { current_epoch: current.epoch });
  }
  if (r.signerUserId !== signer.userId || r.signerDeviceId !== signer.deviceId) {
    throw invalidArgument('epoch_signer_mismatch', 'the record must be signed by the calling device', { field: 'epoch_record' });
  }
  const signerEntry = r.members.find((m) => m.userId === signer.userId);
  if (!signerEntry || signerEntry.role !== 'admin' || !signerEntry.devices.some((d) => d.deviceId === signer.deviceId)) {
    throw invalidArgument('epoch_signer_not_listed', 'the signing device must be listed in the record under an admin', { field: 'epoch_record' });
  }

  const listed = new Map(r.members.map((m) => [m.userId, m]));
  const missingMembers = Object.keys(members).filter((u) => !listed.has(u));
  const extraMembers = [...listed.keys()].filter((u) => !members[u]);
  const roleMismatches = r.members
    .filter((m) => members[m.userId] && (m.role === 'admin') !== isAdmin(members[m.userId]!.role))
    .map((m) => m.userId);
  if (missingMembers.length || extraMembers.length || roleMismatches.length) {
    throw failedPrecondition('epoch_members_mismatch', "the record's members and roles must be the chat's members after the change (owner and admins as admin)", {
      missing_members: missingMembers.sort(),
      extra_members: extraMembers.sort(),
      role_mismatches: roleMismatches,
    });
  }

  const expected = new Map<string, string>();
  const keyOf = new Map<string, string>();
  for (const userId of Object.keys(members)) {
    for (const d of proposal.directory[userId] ?? []) {
      expected.set(d.deviceId, userId);
      keyOf.set(d.deviceId, d.signingKey);
    }
  }
  const recordDevices = new Map<string, string>();
  for (const m of r.members) {
    for (const d of m.devices) {
      recordDevices.set(d.deviceId, m.userId);
      if (keyOf.has(d.deviceId) && keyOf.get(d.deviceId) !== d.signingKey) {
        throw invalidArgument('epoch_device_key_mismatch', `device ${d.deviceId} is listed with a signing key that is not its own`, {
          field: 'epoch_record',
          device_id: d.deviceId,
        });
      }
    }
  }
  const devices = deviceDiff(expected, recordDevices);
  if (mismatched(devices)) throw mismatchedDevices(devices, "the record's devices");

  const given = new Map(proposal.keys.map((k) => [k.deviceId, recordDevices.get(k.deviceId) ?? '']));
  const keys = deviceDiff(recordDevices, given);
  if (mismatched(keys)) {
    throw invalidArgument('epoch_keys_mismatch', 'give exactly one wrapped epoch key per device listed in the record', mismatchedDevicesDetailsJson(keys));
  }
  return proposal.keys.map((k) => ({ userId: recordDevices.get(k.deviceId)!, deviceId: k.deviceId, wrappedKey: k.wrappedKey }));
}

function epochPublished(chatId: string, proposal: EpochProposal, keys: EpochKey[], now: string): ChatEvent {
  const r = proposal.record;
  return {
    type: 'GroupEpochPublished',
    data: {
      chatId,
      epoch: r.epoch,
      recordHash: r.hash,
      record: r.document,
      keys,
      signerUserId: r.signerUserId,
      signerDeviceId: r.signerDeviceId,
      occurredAt: now,
    },
  };
}

/** The epoch's event, and for a legacy group still showing a plaintext title, its removal: every new record is v2 and carries the title encrypted. */
function epochEvents(chat: { chatId: string; title: string }, proposal: EpochProposal, keys: EpochKey[], now: string): ChatEvent[] {
  const events = [epochPublished(chat.chatId, proposal, keys, now)];
  if (chat.title !== '') events.push({ type: 'LegacyTitleCleared', data: { chatId: chat.chatId, epoch: proposal.record.epoch, occurredAt: now } });
  return events;
}

function createPersonal(c: Extract<ChatCommand, { type: 'CreatePersonalChat' }>, s: ChatState): ChatEvent[] {
  if (s.status !== 'none') return []; // one personal chat per pair: creating it again names the same chat
  const [a, b] = c.userIds;
  if (a === b) throw invalidArgument('invalid_peer', 'a personal chat needs two different users', { field: 'peer_user_id' });
  return [
    {
      type: 'ChatCreated',
      data: {
        chatId: c.chatId,
        chatType: 'personal',
        title: '',
        createdBy: c.createdBy,
        members: [...c.userIds].sort().map((userId) => ({ userId, role: 'member' as const })),
        occurredAt: c.now,
      },
    },
  ];
}

function checkNewMembers(members: MemberEntry[], existing: Record<string, unknown>, total: number, maxMembers: number): void {
  const seen = new Set<string>();
  for (const m of members) {
    if (seen.has(m.userId) || existing[m.userId]) {
      throw (existing[m.userId] ? failedPrecondition : invalidArgument)(
        existing[m.userId] ? 'already_member' : 'duplicate_member',
        `user ${m.userId} is already a member or listed twice`,
        { user_id: m.userId },
      );
    }
    if (m.role === 'owner') throw invalidArgument('invalid_role', 'a group has exactly one owner; transfer ownership with ChangeRole', { field: 'role' });
    seen.add(m.userId);
  }
  if (total > maxMembers) throw failedPrecondition('too_many_members', `a group has at most ${maxMembers} members`, { limit: maxMembers });
}

function createGroup(c: Extract<ChatCommand, { type: 'CreateGroup' }>, s: ChatState): ChatEvent[] {
  if (s.status !== 'none') throw new AppError('already_exists', 'chat_exists', 'a chat with this id exists; choose a new id');
  checkNewMembers(c.members, { [c.ownerUserId]: true }, c.members.length + 1, c.maxMembers);
  const members: MemberEntry[] = [{ userId: c.ownerUserId, role: 'owner' }, ...c.members];
  const roles = Object.fromEntries(members.map((m) => [m.userId, { role: m.role }]));
  const keys = checkEpoch(c.chatId, { epoch: 0, headHash: '' }, roles, c.epoch, { userId: c.ownerUserId, deviceId: c.ownerDeviceId });
  return [
    { type: 'ChatCreated', data: { chatId: c.chatId, chatType: 'group', title: '', createdBy: c.ownerUserId, members, occurredAt: c.now } },
    epochPublished(c.chatId, c.epoch, keys, c.now),
  ];
}

function addMembers(c: Extract<ChatCommand, { type: 'AddMembers' }>, s: ChatState): ChatEvent[] {
  const { chat, me } = requireMember(s, c.actorUserId);
  requireGroup(chat);
  requireAdmin(me);
  if (c.members.length === 0) throw invalidArgument('no_members', 'name at least one user to add', { field: 'members' });
  if (c.members.some((m) => m.role === 'admin') && me.role !== 'owner') throw permissionDenied('owner_only', 'only the owner may make admins');
  checkNewMembers(c.members, chat.members, Object.keys(chat.members).length + c.members.length, c.maxMembers);
  const after: Record<string, { role: Role }> = { ...chat.members };
  for (const m of c.members) after[m.userId] = { role: m.role };
  const keys = checkEpoch(chat.chatId, chat, after, c.epoch, { userId: c.actorUserId, deviceId: c.actorDeviceId });
  return [
    ...c.members.map(
      (m): ChatEvent => ({
        type: 'MemberAdded',
        data: { chatId: chat.chatId, userId: m.userId, role: m.role, addedBy: c.actorUserId, joinedSeq: c.lastSeq, occurredAt: c.now },
      }),
    ),
    ...epochEvents(chat, c.epoch, keys, c.now),
  ];
}

/**
 * A leave must be the caller's own, for this chat, signed by the calling
 * device (checked by the app), and name an epoch up to the current one by its
 * stored record hash: so an admin's client can verify it against a record it
 * has verified, and the server can't invent a leave.
 */
function checkLeave(chat: ActiveChat, c: Extract<ChatCommand, { type: 'RemoveMember' }>, proposal: LeaveProposal): void {
  const l = proposal.leave;
  if (l.chatId !== chat.chatId || l.userId !== c.actorUserId || l.deviceId !== c.actorDeviceId) {
    throw invalidArgument('leave_mismatch', 'the signed leave must name this chat and the calling user and device', { field: 'leave' });
  }
  if (l.epoch > chat.epoch || proposal.storedEpochHash === '' || l.epochHash !== proposal.storedEpochHash) {
    throw failedPrecondition(
      'leave_epoch_mismatch',
      `the signed leave must name an epoch up to the current one (${chat.epoch}) with its record hash; fetch the epochs and sign the leave again`,
      { current_epoch: chat.epoch },
    );
  }
}

/**
 * Removing another member needs the next epoch in the same request (an
 * admin's client builds it from its verified head minus that member);
 * leaving needs the caller's signed leave and puts the group into
 * `epoch_rotation_required` until an admin publishes the next epoch. So the
 * only ways into that state are a signed leave, a revoked device or a deleted
 * account, each of which a client can verify.
 */
function removeMember(c: Extract<ChatCommand, { type: 'RemoveMember' }>, s: ChatState): ChatEvent[] {
  const { chat, me } = requireMember(s, c.actorUserId);
  requireGroup(chat);
  const target = chat.members[c.userId];
  if (!target) throw notFound('member_not_found', 'this user is not a member');
  const leaving = c.userId === c.actorUserId;
  if (target.role === 'owner') {
    throw leaving
      ? failedPrecondition('owner_cannot_leave', 'the owner must transfer ownership before leaving')
      : permissionDenied('cannot_remove_owner', 'the owner cannot be removed');
  }
  if (leaving) {
    if (!c.leave) throw invalidArgument('leave_required', 'leaving a group needs your signed leave (bil.group-leave.v1) in `leave`', { field: 'leave' });
    checkLeave(chat, c, c.leave);
  } else {
    requireAdmin(me);
    if (target.role === 'admin' && me.role !== 'owner') throw permissionDenied('owner_only', 'only the owner may remove an admin');
    if (c.leave) throw invalidArgument('leave_mismatch', "a signed leave only goes with leaving (your own user id)", { field: 'leave' });
    if (!c.epoch) {
      throw invalidArgument('epoch_required', 'removing a member needs the next epoch record without them (epoch_record and epoch_keys) in the same request', {
        field: 'epoch_record',
      });
    }
  }
  const removed: ChatEvent = {
    type: 'MemberRemoved',
    data: {
      chatId: chat.chatId,
      userId: c.userId,
      removedBy: c.actorUserId,
      reason: leaving ? 'left' : 'removed',
      leftSeq: c.lastSeq,
      occurredAt: c.now,
      ...(c.leave ? { leave: c.leave.leave.document } : {}),
    },
  };
  if (!c.epoch) {
    return [
      removed,
      {
        type: 'EpochRotationRequired',
        data: { chatId: chat.chatId, epoch: chat.epoch, reason: 'member_left', userId: c.userId, deviceId: '', occurredAt: c.now },
      },
    ];
  }
  // A leaver can't sign the next record (it must not list them): checkEpoch refuses that with epoch_signer_not_listed.
  const after: Record<string, MemberState> = { ...chat.members };
  delete after[c.userId];
  const keys = checkEpoch(chat.chatId, chat, after, c.epoch, { userId: c.actorUserId, deviceId: c.actorDeviceId });
  return [removed, ...epochEvents(chat, c.epoch, keys, c.now)];
}

function changeRole(c: Extract<ChatCommand, { type: 'ChangeRole' }>, s: ChatState): ChatEvent[] {
  const { chat, me } = requireMember(s, c.actorUserId);
  requireGroup(chat);
  if (me.role !== 'owner') throw permissionDenied('owner_only', 'only the owner changes roles');
  const target = chat.members[c.userId];
  if (!target) throw notFound('member_not_found', 'this user is not a member');
  if (c.userId === c.actorUserId) throw failedPrecondition('cannot_change_own_role', 'transfer ownership to another member instead');
  if (target.role === c.role) return [];
  const changed = (userId: string, role: Role): ChatEvent => ({
    type: 'RoleChanged',
    data: { chatId: chat.chatId, userId, role, changedBy: c.actorUserId, occurredAt: c.now },
  });
  return c.role === 'owner' ? [changed(c.userId, 'owner'), changed(c.actorUserId, 'admin')] : [changed(c.userId, c.role)];
}

function deleteChat(c: Extract<ChatCommand, { type: 'DeleteChat' }>, s: ChatState): ChatEvent[] {
  const { chat, me } = requireMember(s, c.actorUserId);
  requireGroup(chat);
  if (me.role !== 'owner') throw permissionDenied('owner_only', 'only the owner deletes a group');
  return [{ type: 'ChatDeleted', data: { chatId: chat.chatId, deletedBy: c.actorUserId, memberUserIds: Object.keys(chat.members).sort(), occurredAt: c.now } }];
}

function publishEpoch(c: Extract<ChatCommand, { type: 'PublishEpoch' }>, s: ChatState): ChatEvent[] {
  const { chat, me } = requireMember(s, c.actorUserId);
  requireGroup(chat);
  requireAdmin(me);
  const keys = checkEpoch(chat.chatId, chat, chat.members, c.epoch, { userId: c.actorUserId, deviceId: c.actorDeviceId });
  return epochEvents(chat, c.epoch, keys, c.now);
}

function addEpochKeys(c: Extract<ChatCommand, { type: 'AddEpochKeys' }>, s: ChatState): ChatEvent[] {
  const { chat } = requireMember(s, c.actorUserId);
  requireGroup(chat);
  if (c.epoch !== chat.epoch) throw failedPrecondition('stale_epoch', `keys can only be added for the current epoch ${chat.epoch}`, { current_epoch: chat.epoch });
  if (chat.rotationRequired) throw failedPrecondition('epoch_rotation_required', 'this epoch must be replaced; publish the next epoch instead');
  if (c.keys.length === 0) throw invalidArgument('no_keys', 'give at least one wrapped key', { field: 'epoch_keys' });
  const owner = new Map<string, string>();
  for (const userId of Object.keys(chat.members)) for (const d of c.directory[userId] ?? []) owner.set(d.deviceId, userId);
  const extraDevices = c.keys.filter((k) => !owner.has(k.deviceId)).map((k) => ({ userId: '', deviceId: k.deviceId }));
  if (extraDevices.length) throw mismatchedDevices({ missingDevices: [], extraDevices }, 'these devices');
  const listed = c.keys.filter((k) => chat.members[owner.get(k.deviceId)!]!.devices.includes(k.deviceId));
  if (listed.length) {
    throw failedPrecondition('epoch_key_exists', 'a device listed in the epoch record already has its key', { device_id: listed[0]!.deviceId });
  }
  return [
    {
      type: 'EpochKeysAdded',
      data: {
        chatId: chat.chatId,
        epoch: chat.epoch,
        keys: c.keys.map((k) => ({ userId: owner.get(k.deviceId)!, deviceId: k.deviceId, wrappedKey: k.wrappedKey })),
        addedBy: c.actorUserId,
        occurredAt: c.now,
      },
    },
  ];
}

function requireRotationForDevice(c: Extract<ChatCommand, { type: 'RequireRotationForDevice' }>, s: ChatState): ChatEvent[] {
  if (s.status !== 'active' || s.chatType !== 'group' || s.rotationRequired) return [];
  if (!s.members[c.userId]?.devices.includes(c.deviceId)) return [];
  return [
    { type: 'EpochRotationRequired', data: { chatId: s.chatId, epoch: s.epoch, reason: 'device_revoked', userId: c.userId, deviceId: c.deviceId, occurredAt: c.now } },
  ];
}

/** An account was deleted: it leaves every chat; a group it owned passes to its longest-standing admin, else member. */
function removeDeletedUser(c: Extract<ChatCommand, { type: 'RemoveDeletedUser' }>, s: ChatState): ChatEvent[] {
  if (s.status !== 'active' || !s.members[c.userId]) return [];
  const events: ChatEvent[] = [
    {
      type: 'MemberRemoved',
      data: { chatId: s.chatId, userId: c.userId, removedBy: '', reason: 'account_deleted', leftSeq: c.lastSeq, occurredAt: c.now },
    },
  ];
  if (s.chatType === 'personal') return events;
  const rest = Object.entries(s.members).filter(([u]) => u !== c.userId);
  if (rest.length === 0) {
    return [...events, { type: 'ChatDeleted', data: { chatId: s.chatId, deletedBy: '', memberUserIds: [c.userId], occurredAt: c.now } }];
  }
  if (s.members[c.userId]!.role === 'owner') {
    const rank = (r: Role) => (r === 'admin' ? 0 : 1);
    const [heir] = rest.sort(([ua, a], [ub, b]) => rank(a.role) - rank(b.role) || a.joinedSeq - b.joinedSeq || a.joinedAt.localeCompare(b.joinedAt) || ua.localeCompare(ub));
    events.push({ type: 'RoleChanged', data: { chatId: s.chatId, userId: heir![0], role: 'owner', changedBy: '', occurredAt: c.now } });
  }
  if (!s.rotationRequired) {
    events.push({
      type: 'EpochRotationRequired',
      data: { chatId: s.chatId, epoch: s.epoch, reason: 'account_deleted', userId: c.userId, deviceId: '', occurredAt: c.now },
    });
  }
  return events;
}

/**
 * The timer: in groups the owner and admins set it (its signed form is in the
 * group metadata, which the server can't read), in personal chats either
 * member with their device's signed statement (signature checked by the app):
 * it must name this chat, the timer asked for and the caller, with a version
 * above the stored one.
 */
function setDisappearingTimer(c: Extract<ChatCommand, { type: 'SetDisappearingTimer' }>, s: ChatState): ChatEvent[] {
  const { chat, me } = requireMember(s, c.actorUserId);
  const t = c.statement;
  const data = { chatId: chat.chatId, disappearingMs: c.disappearingMs, setBy: c.actorUserId, occurredAt: c.now };
  if (chat.chatType === 'group') {
    requireAdmin(me);
    if (t) throw invalidArgument('timer_statement_mismatch', "a group's timer is in its signed metadata: send no timer_statement", { field: 'timer_statement' });
    if ((chat.disappearingMs ?? 0) === c.disappearingMs) return [];
    return [{ type: 'DisappearingTimerSet', data }];
  }
  if (!t) throw invalidArgument('invalid_timer_statement', "a personal chat's timer needs the caller's signed timer_statement", { field: 'timer_statement' });
  if (t.chatId !== chat.chatId || t.disappearingMs !== c.disappearingMs || t.setByUserId !== c.actorUserId || t.setByDeviceId !== c.actorDeviceId) {
    throw invalidArgument('timer_statement_mismatch', 'the timer statement must name this chat, this disappearing_ms, and the calling user and device', {
      field: 'timer_statement',
    });
  }
  const stored = chat.timerVersion ?? 0;
  if (t.version <= stored) {
    throw failedPrecondition('timer_statement_stale', `the stored timer statement has version ${stored}: sign one with a higher version`, { stored_version: stored });
  }
  return [{ type: 'DisappearingTimerSet', data: { ...data, statement: t.document, version: t.version } }];
}

/**
 * Delete for everyone: only the message's sender user (from any of their
 * devices, which signs the tombstone) may; the tombstone must name this chat,
 * this message, the caller and the calling device. Deleting again changes nothing.
 */
function deleteMessage(c: Extract<ChatCommand, { type: 'DeleteMessage' }>, s: ChatState): ChatEvent[] {
  const { chat } = requireMember(s, c.actorUserId);
  const m = c.message;
  if (!m) throw notFound('message_not_found', 'no such message');
  if (m.senderUserId !== c.actorUserId) throw permissionDenied('not_the_sender', 'only the sender of a message may delete it for everyone');
  const t = c.tombstone;
  if (t.chatId !== chat.chatId || t.messageId !== m.messageId || t.senderUserId !== c.actorUserId || t.senderDeviceId !== c.actorDeviceId) {
    throw invalidArgument('tombstone_mismatch', 'the tombstone must name this chat and message, and the calling user and device', { field: 'tombstone' });
  }
  if (m.removed) return [];
  return [
    {
      type: 'MessageDeleted',
      data: { chatId: chat.chatId, seq: m.seq, messageId: m.messageId, senderUserId: m.senderUserId, tombstone: t.document, occurredAt: c.now },
    },
  ];
}

function postMessage(c: Extract<ChatCommand, { type: 'PostMessage' }>, s: ChatState): ChatEvent[] {
  const { chat, me } = requireMember(s, c.senderUserId);
  const h = c.envelope.header;
  if (h.chat_id !== chat.chatId) throw invalidArgument('envelope_chat_mismatch', 'the envelope header names another chat', { field: 'envelope.header.chat_id' });
  if (h.message_id !== c.messageId) {
    throw invalidArgument('envelope_message_id_mismatch', 'the envelope header names another message id', { field: 'envelope.header.message_id' });
  }
  if (h.sender_user_id !== c.senderUserId || h.sender_device_id !== c.senderDeviceId) {
    throw invalidArgument('envelope_sender_mismatch', 'the envelope sender must be the calling user and device', { field: 'envelope.header.sender_device_id' });
  }
  const scheme = chat.chatType === 'personal' ? 'direct' : 'group';
  if (h.scheme !== scheme) {
    throw invalidArgument('envelope_scheme_mismatch', `messages in a ${chat.chatType} chat use the "${scheme}" scheme`, { field: 'envelope.header.scheme' });
  }
  if (chat.chatType === 'personal') {
    if (chat.pair.some((u) => !chat.members[u])) throw failedPrecondition('peer_left', 'the other account was deleted; nothing can be sent here');
    const peer = chat.pair.find((u) => u !== c.senderUserId);
    if (h.recipient_user_id !== peer) {
      throw invalidArgument('envelope_recipient_mismatch', 'envelope.header.recipient_user_id must be the other user of this personal chat', {
        field: 'envelope.header.recipient_user_id',
      });
    }
    // Exactly the current devices of both users, the sending one included (it
    // reads its own message back from history). The sender is an active device
    // of the caller even if the directory hasn't heard of it yet.
    const expected = new Map<string, string>();
    for (const u of chat.pair) for (const d of c.directory?.[u] ?? []) expected.set(d.deviceId, u);
    expected.set(c.senderDeviceId, c.senderUserId);
    const given = new Map(c.wrappedKeys.map((k) => [k.deviceId, expected.get(k.deviceId) ?? '']));
    const diff = deviceDiff(expected, given);
    if (mismatched(diff)) throw mismatchedDevices(diff, 'the wrapped keys');
  } else {
    if (c.wrappedKeys.length > 0) throw invalidArgument('unexpected_wrapped_keys', 'group messages carry no wrapped keys', { field: 'wrapped_keys' });
    if (chat.rotationRequired) {
      throw failedPrecondition('epoch_rotation_required', 'a member or device left; an admin must publish the next epoch before anyone sends', {
        current_epoch: chat.epoch,
      });
    }
    if (h.epoch < chat.epoch) throw failedPrecondition('stale_epoch', `the current epoch is ${chat.epoch}`, { current_epoch: chat.epoch });
    if (h.epoch > chat.epoch) throw failedPrecondition('unknown_epoch', `epoch ${h.epoch} does not exist yet`, { current_epoch: chat.epoch });
    if (h.epoch_hash !== chat.headHash) {
      throw failedPrecondition(
        'envelope_epoch_hash_mismatch',
        `envelope.header.epoch_hash is not the record hash of epoch ${chat.epoch} this server stores; refetch the epochs (a different hash may mean a forked chain)`,
        { current_epoch: chat.epoch, epoch_hash: chat.headHash },
      );
    }
    if (!me.devices.includes(c.senderDeviceId)) {
      throw failedPrecondition('device_not_in_epoch', 'the sending device is not listed in the current epoch record; an admin must publish a new epoch');
    }
  }
  return [
    {
      type: 'MessagePosted',
      data: {
        chatId: chat.chatId,
        chatType: chat.chatType,
        seq: c.seq,
        messageId: c.messageId,
        senderUserId: c.senderUserId,
        senderDeviceId: c.senderDeviceId,
        epoch: h.epoch,
        envelope: c.envelope,
        wrappedKeys: c.wrappedKeys,
        occurredAt: c.now,
        ...(chat.disappearingMs ? { expiresAt: new Date(Date.parse(c.now) + chat.disappearingMs).toISOString() } : {}),
      },
    },
  ];
}

export function decideChat(command: ChatCommand, state: ChatState): ChatEvent[] {
  switch (command.type) {
    case 'CreatePersonalChat':
      return createPersonal(command, state);
    case 'CreateGroup':
      return createGroup(command, state);
    case 'AddMembers':
      return addMembers(command, state);
    case 'RemoveMember':
      return removeMember(command, state);
    case 'ChangeRole':
      return changeRole(command, state);
    case 'DeleteChat':
      return deleteChat(command, state);
    case 'PublishEpoch':
      return publishEpoch(command, state);
    case 'AddEpochKeys':
      return addEpochKeys(command, state);
    case 'RequireRotationForDevice':
      return requireRotationForDevice(command, state);
    case 'RemoveDeletedUser':
      return removeDeletedUser(command, state);
    case 'PostMessage':
      return postMessage(command, state);
    case 'SetDisappearingTimer':
      return setDisappearingTimer(command, state);
    case 'DeleteMessage':
      return deleteMessage(command, state);
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${(unknown as { type: string }).type}`);
    }
  }
}

export function evolveChat(state: ChatState, event: ChatEvent): ChatState {
  if (event.type === 'ChatCreated') {
    const d = event.data;
    return {
      status: 'active',
      chatId: d.chatId,
      chatType: d.chatType,
      title: d.title,
      createdBy: d.createdBy,
      createdAt: d.occurredAt,
      members: Object.fromEntries(d.members.map((m) => [m.userId, { role: m.role, joinedSeq: 0, joinedAt: d.occurredAt, devices: [] }])),
      pair: d.chatType === 'personal' ? d.members.map((m) => m.userId).sort() : [],
      epoch: 0,
      headHash: '',
      rotationRequired: false,
    };
  }
  if (state.status === 'none') return state;
  switch (event.type) {
    case 'MemberAdded': {
      const d = event.data;
      return { ...state, members: { ...state.members, [d.userId]: { role: d.role, joinedSeq: d.joinedSeq, joinedAt: d.occurredAt, devices: [] } } };
    }
    case 'MemberRemoved': {
      const members = { ...state.members };
      delete members[event.data.userId];
      return { ...state, members };
    }
    case 'RoleChanged': {
      const m = state.members[event.data.userId];
      return m ? { ...state, members: { ...state.members, [event.data.userId]: { ...m, role: event.data.role } } } : state;
    }
    case 'ChatDeleted':
      return { ...state, status: 'deleted', members: {} };
    case 'GroupEpochPublished': {
      const byUser = new Map<string, string[]>();
      for (const k of event.data.keys) byUser.set(k.userId, [...(byUser.get(k.userId) ?? []), k.deviceId].sort());
      const members = Object.fromEntries(Object.entries(state.members).map(([u, m]) => [u, { ...m, devices: byUser.get(u) ?? [] }]));
      return { ...state, members, epoch: event.data.epoch, headHash: event.data.recordHash, rotationRequired: false };
    }
    case 'EpochRotationRequired':
      return { ...state, rotationRequired: true };
    case 'LegacyTitleCleared':
      return { ...state, title: '' };
    case 'DisappearingTimerSet':
      return { ...state, disappearingMs: event.data.disappearingMs, ...(event.data.version !== undefined ? { timerVersion: event.data.version } : {}) };
    case 'EpochKeysAdded':
    case 'MessagePosted':
    case 'MessageDeleted':
      return state;
    default: {
      const unknown: never = event;
      return unknown;
    }
  }
}

export const chatDecider: Decider<ChatCommand, ChatEvent, ChatState> = {
  initialState: () => ({ status: 'none' }),
  decide: decideChat,
  evolve: evolveChat,
};
