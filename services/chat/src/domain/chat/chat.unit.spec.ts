import { describe, expect, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { chatDecider, type ChatCommand, type ChatEvent, type Directory, type EpochProposal, type LeaveProposal, type Role } from './chat.js';
import type { Envelope, EpochRecord, SignedLeave } from '../validation.js';

const spec = deciderSpec(chatDecider);
const now = '2026-11-26T10:00:00.000Z';
const G = 'c0000000-0000-4000-8000-000000000001';
const P = 'c0000000-0000-4000-8000-000000000002';
// users: owner, admin, member, newcomer; each with devices <u>1 (and owner has o2)
const [O, A, M, N] = ['a0000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-00000000000b', 'a0000000-0000-4000-8000-00000000000c', 'a0000000-0000-4000-8000-00000000000d'];
const dev = (u: string, n: number) => `${u.slice(0, -2)}${n}${u.slice(-1)}`;
const directory: Directory = Object.fromEntries(
  [O, A, M, N].map((u) => [u, (u === O ? [1, 2] : [1]).map((n) => ({ deviceId: dev(u, n), signingKey: `sk-${dev(u, n)}` }))]),
);

function proposal(epoch: number, members: Array<[string, 'admin' | 'member']>, opts: { signer?: [string, string]; chatId?: string; prevHash?: string; dir?: Directory } = {}): EpochProposal {
  const dir = opts.dir ?? directory;
  const [su, sd] = opts.signer ?? [O, dev(O, 1)];
  const record: EpochRecord = {
    chatId: opts.chatId ?? G,
    epoch,
    prevHash: opts.prevHash ?? (epoch === 1 ? '' : `hash-${epoch - 1}`),
    signerUserId: su,
    signerDeviceId: sd,
    members: members.map(([userId, role]) => ({ userId, role, devices: dir[userId] ?? [] })),
    hash: `hash-${epoch}`,
    signedBytes: '',
    signature: '',
    document: { epoch },
  };
  const keys = members.flatMap(([u]) => (dir[u] ?? []).map((d) => ({ deviceId: d.deviceId, wrappedKey: `wk-${d.deviceId}` })));
  return { record, keys, directory: dir };
}

const keysOf = (p: EpochProposal) =>
  p.record.members.flatMap((m) => m.devices.map((d) => ({ userId: m.userId, deviceId: d.deviceId, wrappedKey: `wk-${d.deviceId}` })));
const published = (p: EpochProposal): ChatEvent => ({
  type: 'GroupEpochPublished',
  data: { chatId: G, epoch: p.record.epoch, recordHash: p.record.hash, record: p.record.document, keys: keysOf(p), signerUserId: p.record.signerUserId, signerDeviceId: p.record.signerDeviceId, occurredAt: now },
});

const genesis = proposal(1, [[O, 'admin'], [A, 'admin'], [M, 'member']]);
const created: ChatEvent = {
  type: 'ChatCreated',
  data: { chatId: G, chatType: 'group', title: '', createdBy: O, members: [{ userId: O, role: 'owner' }, { userId: A, role: 'admin' }, { userId: M, role: 'member' }], occurredAt: now },
};
/** A group created before step 8, with its plaintext title. */
const legacyCreated: ChatEvent = { ...created, data: { ...(created.data as Extract<ChatEvent, { type: 'ChatCreated' }>['data']), title: 'Team' } } as ChatEvent;
const group = [created, published(genesis)];
const legacyGroup = [legacyCreated, published(genesis)];
const titleCleared = (epoch: number): ChatEvent => ({ type: 'LegacyTitleCleared', data: { chatId: G, epoch, occurredAt: now } });
const createGroup: ChatCommand = {
  type: 'CreateGroup',
  chatId: G,
  ownerUserId: O,
  ownerDeviceId: dev(O, 1),
  members: [{ userId: A, role: 'admin' }, { userId: M, role: 'member' }],
  epoch: genesis,
  maxMembers: 10,
  now,
};

const personalCreated: ChatEvent = {
  type: 'ChatCreated',
  data: { chatId: P, chatType: 'personal', title: '', createdBy: O, members: [{ userId: O, role: 'member' as const }, { userId: M, role: 'member' as const }].sort((a, b) => a.userId.localeCompare(b.userId)), occurredAt: now },
};

function envelope(over: Partial<Envelope['header']> = {}): Envelope {
  return {
    header: {
      v: 2, suite: 'aes-256-gcm', chat_id: G, message_id: 'm0000000-0000-7000-8000-000000000001', sender_user_id: M, sender_device_id: dev(M, 1),
      scheme: 'group', epoch: 1, epoch_hash: 'hash-1', recipient_user_id: '', counter: 1, timestamp: 1, nonce: 'n', commitment: 'c', ...over,
    },
    ciphertext: 'ct',
    signature: 'sig',
  };
}
const post = (over: Partial<Extract<ChatCommand, { type: 'PostMessage' }>> = {}, header: Partial<Envelope['header']> = {}): ChatCommand => ({
  type: 'PostMessage',
  seq: 7,
  messageId: 'm0000000-0000-7000-8000-000000000001',
  senderUserId: M,
  senderDeviceId: dev(M, 1),
  envelope: envelope(header),
  wrappedKeys: [],
  now,
  ...over,
});
const directPost = (keys: string[], over: Partial<Extract<ChatCommand, { type: 'PostMessage' }>> = {}) =>
  post(
    { senderUserId: O, senderDeviceId: dev(O, 1), wrappedKeys: keys.map((deviceId) => ({ deviceId, wrappedKey: 'k' })), directory, ...over },
    { chat_id: P, scheme: 'direct', epoch: 0, epoch_hash: '', recipient_user_id: M, sender_user_id: O, sender_device_id: dev(O, 1) },
  );

const removed = (userId: string, reason: 'removed' | 'left' = 'removed', by = O, leave?: Record<string, unknown>): ChatEvent => ({
  type: 'MemberRemoved',
  data: { chatId: G, userId, removedBy: by, reason, leftSeq: 5, occurredAt: now, ...(leave ? { leave } : {}) },
});
const rotation = (userId: string, reason: 'member_left' | 'device_revoked' | 'account_deleted', deviceId = '', epoch = 1): ChatEvent => ({
  type: 'EpochRotationRequired',
  data: { chatId: G, epoch, reason, userId, deviceId, occurredAt: now },
});
/** A signed leave as the app hands it over (signature already verified); `stored` is the stored hash of its epoch. */
function leaveOf(userId: string, over: Partial<SignedLeave> = {}, stored?: string): LeaveProposal {
  const leave: SignedLeave = {
    chatId: G, userId, deviceId: dev(userId, 1), epoch: 1, epochHash: 'hash-1', createdAt: 1, signedBytes: '', signature: 'sig',
    document: { payload: { type: 'bil.group-leave.v1', user_id: userId }, signature: 'sig' }, ...over,
  };
  return { leave, storedEpochHash: stored ?? `hash-${leave.epoch}` };
}
const role = (userId: string, r: Role, by = O): ChatEvent => ({ type: 'RoleChanged', data: { chatId: G, userId, role: r, changedBy: by, occurredAt: now } });

describe('chat decider: personal chats', () => {
  it('creates the one chat of a pair, and creating it again changes nothing', () => {
    spec.given().when({ type: 'CreatePersonalChat', chatId: P, userIds: [O, M], createdBy: O, now }).then([personalCreated]);
    spec.given(personalCreated).when({ type: 'CreatePersonalChat', chatId: P, userIds: [O, M], createdBy: M, now }).then([]);
  });

  it('refuses a chat with oneself', () => {
    spec.given().when({ type: 'CreatePersonalChat', chatId: P, userIds: [O, O], createdBy: O, now }).thenThrows('invalid_peer');
  });

  it('has no membership changes, roles, epochs or deletion', () => {
    spec.given(personalCreated).when({ type: 'RemoveMember', actorUserId: O, actorDeviceId: dev(O, 1), userId: M, lastSeq: 0, now }).thenThrows('not_a_group');
    spec.given(personalCreated).when({ type: 'ChangeRole', actorUserId: O, userId: M, role: 'admin', now }).thenThrows('not_a_group');
    spec.given(personalCreated).when({ type: 'DeleteChat', actorUserId: O, now }).thenThrows('not_a_group');
  });

  it('posts with exactly one wrapped key per current device of both users, the sending one included', () => {
    const state = [personalCreated].reduce(chatDecider.evolve, chatDecider.initialState());
    const events = chatDecider.decide(directPost([dev(O, 1), dev(O, 2), dev(M, 1)]), state);
    expect(events).toMatchObject([{ type: 'MessagePosted', data: { chatId: P, seq: 7, chatType: 'personal', epoch: 0 } }]);
    expect((events[0]!.data as { wrappedKeys: { deviceId: string }[] }).wrappedKeys.map((k) => k.deviceId)).toEqual([dev(O, 1), dev(O, 2), dev(M, 1)]);
    // The sending device counts as current even before the directory has heard of it.
    const lagging: Directory = { ...directory, [O]: directory[O]!.filter((d) => d.deviceId !== dev(O, 1)) };
    expect(chatDecider.decide(directPost([dev(O, 1), dev(O, 2), dev(M, 1)], { directory: lagging }), state)).toHaveLength(1);
  });

  it('refuses a send without a wrapped key for the sending device', () => {
    const state = [personalCreated].reduce(chatDecider.evolve, chatDecider.initialState());
    try {
      chatDecider.decide(directPost([dev(O, 2), dev(M, 1)]), state);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'mismatched_devices', details: { missing_devices: [{ user_id: O, device_id: dev(O, 1) }], extra_devices: [] } });
    }
  });

  it('answers missing and extra devices so the client can refetch and retry', () => {
    const state = [personalCreated].reduce(chatDecider.evolve, chatDecider.initialState());
    try {
      chatDecider.decide(directPost([dev(M, 1), dev(A, 1)]), state);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({
        code: 'mismatched_devices',
        kind: 'failed_precondition',
        details: {
          missing_devices: [
            { user_id: O, device_id: dev(O, 1) },
            { user_id: O, device_id: dev(O, 2) },
          ],
          extra_devices: [{ user_id: '', device_id: dev(A, 1) }],
        },
      });
    }
    spec.given(personalCreated).when(directPost([dev(O, 1), dev(O, 2), dev(M, 1), dev(A, 1)])).thenThrows('mismatched_devices');
  });

  it('binds a direct message to the other user of the chat (header v2 recipient_user_id)', () => {
    spec.given(personalCreated).when(directPost([dev(O, 1), dev(O, 2), dev(M, 1)], { envelope: envelope({ chat_id: P, scheme: 'direct', epoch: 0, epoch_hash: '', recipient_user_id: A, sender_user_id: O, sender_device_id: dev(O, 1) }) })).thenThrows('envelope_recipient_mismatch');
    spec.given(personalCreated).when(directPost([dev(O, 1), dev(O, 2), dev(M, 1)], { envelope: envelope({ chat_id: P, scheme: 'direct', epoch: 0, epoch_hash: '', recipient_user_id: O, sender_user_id: O, sender_device_id: dev(O, 1) }) })).thenThrows('envelope_recipient_mismatch');
  });

  it('refuses the group scheme, and a chat whose peer account is gone', () => {
    spec.given(personalCreated).when(post({ senderUserId: O, senderDeviceId: dev(O, 1), directory }, { chat_id: P, sender_user_id: O, sender_device_id: dev(O, 1) })).thenThrows('envelope_scheme_mismatch');
    const gone: ChatEvent = { type: 'MemberRemoved', data: { chatId: P, userId: M, removedBy: '', reason: 'account_deleted', leftSeq: 3, occurredAt: now } };
    spec.given(personalCreated).when({ type: 'RemoveDeletedUser', userId: M, lastSeq: 3, now }).then([gone]);
    spec.given(personalCreated, gone).when(directPost([dev(O, 2)])).thenThrows('peer_left');
  });
});

describe('chat decider: groups', () => {
  it('creates a group with its genesis epoch, atomically', () => {
    spec.given().when(createGroup).then(group);
  });

  it('refuses a taken chat id and an owner listed twice', () => {
    spec.given(...group).when(createGroup).thenThrows('chat_exists');
    spec.given().when({ ...createGroup, members: [{ userId: O, role: 'member' }] } as ChatCommand).thenThrows('already_member');
    spec.given().when({ ...createGroup, maxMembers: 2 } as ChatCommand).thenThrows('too_many_members');
  });

  it('checks the genesis record: chat, position, signer, members, roles, devices, keys', () => {
    const bad = (p: EpochProposal) => ({ ...createGroup, epoch: p }) as ChatCommand;
    spec.given().when(bad(proposal(1, [[O, 'admin'], [A, 'admin'], [M, 'member']], { chatId: P }))).thenThrows('epoch_chat_mismatch');
    spec.given().when(bad(proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']]))).thenThrows('unexpected_epoch');
    spec.given().when(bad(proposal(1, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)] }))).thenThrows('epoch_signer_mismatch');
    spec.given().when(bad(proposal(1, [[O, 'member'], [A, 'admin'], [M, 'member']]))).thenThrows('epoch_signer_not_listed');
    spec.given().when(bad(proposal(1, [[O, 'admin'], [A, 'admin']]))).thenThrows('epoch_members_mismatch');
    spec.given().when(bad(proposal(1, [[O, 'admin'], [A, 'member'], [M, 'member']]))).thenThrows('epoch_members_mismatch');
    const stale = proposal(1, [[O, 'admin'], [A, 'admin'], [M, 'member']], { dir: { ...directory, [O]: directory[O]!.slice(0, 1) } });
    spec.given().when(bad({ ...stale, directory })).thenThrows('mismatched_devices');
    const fewerKeys = { ...genesis, keys: genesis.keys.slice(1) };
    spec.given().when(bad(fewerKeys)).thenThrows('epoch_keys_mismatch');
    const wrongKey = proposal(1, [[O, 'admin'], [A, 'admin'], [M, 'member']], { dir: { ...directory, [M]: [{ deviceId: dev(M, 1), signingKey: 'other' }] } });
    spec.given().when(bad({ ...wrongKey, directory })).thenThrows('epoch_device_key_mismatch');
  });

  it('adds members only with the next epoch listing them; admins add members, the owner adds admins', () => {
    const next = proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member'], [N, 'member']], { signer: [A, dev(A, 1)] });
    const add = (actor: string, r: Role = 'member', p = next): ChatCommand => ({
      type: 'AddMembers', actorUserId: actor, actorDeviceId: dev(actor, 1), members: [{ userId: N, role: r }], epoch: p, lastSeq: 9, maxMembers: 10, now,
    });
    spec.given(...group).when(add(A)).then([
      { type: 'MemberAdded', data: { chatId: G, userId: N, role: 'member', addedBy: A, joinedSeq: 9, occurredAt: now } },
      published(next),
    ]);
    spec.given(...group).when(add(M)).thenThrows('not_an_admin');
    spec.given(...group).when(add(A, 'admin')).thenThrows('owner_only');
    spec.given(...group).when(add(A, 'member', proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)] }))).thenThrows('epoch_members_mismatch');
    spec.given(...group).when({ ...add(A), members: [{ userId: M, role: 'member' }] } as ChatCommand).thenThrows('already_member');
    spec.given(...group).when(add(N)).thenThrows('chat_not_found');
  });

  it('removes another member only with the next epoch in the same request', () => {
    const next = proposal(2, [[O, 'admin'], [A, 'admin']]);
    const remove = (actor: string, userId: string, epoch?: EpochProposal): ChatCommand => ({
      type: 'RemoveMember', actorUserId: actor, actorDeviceId: dev(actor, 1), userId, epoch, lastSeq: 5, now,
    });
    spec.given(...group).when(remove(O, M, next)).then([removed(M), published(next)]);
    spec.given(...group).when(remove(A, M)).thenThrows('epoch_required');
    spec.given(...group).when(remove(O, M, proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']]))).thenThrows('epoch_members_mismatch');
    spec.given(...group).when({ ...remove(O, M, next), leave: leaveOf(M) } as ChatCommand).thenThrows('leave_mismatch');
  });

  it('lets a member leave with a signed leave, recorded in the event, and requires a rotation', () => {
    const leave = (l?: LeaveProposal): ChatCommand => ({ type: 'RemoveMember', actorUserId: M, actorDeviceId: dev(M, 1), userId: M, leave: l, lastSeq: 5, now });
    const l = leaveOf(M);
    spec.given(...group).when(leave(l)).then([removed(M, 'left', M, l.leave.document), rotation(M, 'member_left')]);
    spec.given(...group).when(leave()).thenThrows('leave_required');
    // A leave naming an older epoch by its stored hash is fine (the leaver had not seen the newest record yet).
    const next = proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']]);
    const old = leaveOf(M, { epoch: 1, epochHash: 'hash-1' });
    spec.given(...group, published(next)).when(leave(old)).then([removed(M, 'left', M, old.leave.document), rotation(M, 'member_left', '', 2)]);
  });

  it("refuses a leave that isn't the caller's, for this chat, at a stored epoch", () => {
    const leave = (l: LeaveProposal): ChatCommand => ({ type: 'RemoveMember', actorUserId: M, actorDeviceId: dev(M, 1), userId: M, leave: l, lastSeq: 5, now });
    spec.given(...group).when(leave(leaveOf(M, { chatId: P }))).thenThrows('leave_mismatch');
    spec.given(...group).when(leave(leaveOf(M, { userId: A }))).thenThrows('leave_mismatch');
    spec.given(...group).when(leave(leaveOf(M, { deviceId: dev(M, 2) }))).thenThrows('leave_mismatch');
    spec.given(...group).when(leave(leaveOf(M, { epoch: 2, epochHash: 'hash-2' }, ''))).thenThrows('leave_epoch_mismatch');
    spec.given(...group).when(leave(leaveOf(M, { epochHash: 'forked' }))).thenThrows('leave_epoch_mismatch');
    // A leaver can't carry the next epoch: the record they'd sign must not list them.
    spec.given(...group).when({ ...leave(leaveOf(M)), epoch: proposal(2, [[O, 'admin'], [A, 'admin']], { signer: [M, dev(M, 1)] }) } as ChatCommand).thenThrows('epoch_signer_not_listed');
  });

  it("drops a legacy group's plaintext title with its first v2 epoch, and never stores one for a new group", () => {
    const next = proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)] });
    const publish: ChatCommand = { type: 'PublishEpoch', actorUserId: A, actorDeviceId: dev(A, 1), epoch: next, now };
    spec.given(...legacyGroup).when(publish).then([published(next), titleCleared(2)]);
    spec.given(...legacyGroup, published(next), titleCleared(2)).when({ ...publish, epoch: proposal(3, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)] }) }).then([
      published(proposal(3, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)] })),
    ]);
    spec.given(...group).when(publish).then([published(next)]);
    const add = proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member'], [N, 'member']]);
    spec.given(...legacyGroup).when({ type: 'AddMembers', actorUserId: O, actorDeviceId: dev(O, 1), members: [{ userId: N, role: 'member' }], epoch: add, lastSeq: 9, maxMembers: 10, now }).then([
      { type: 'MemberAdded', data: { chatId: G, userId: N, role: 'member', addedBy: O, joinedSeq: 9, occurredAt: now } },
      published(add),
      titleCleared(2),
    ]);
    const state = [...legacyGroup, published(next), titleCleared(2)].reduce(chatDecider.evolve, chatDecider.initialState());
    expect(state).toMatchObject({ status: 'active', title: '', epoch: 2 });
    expect(chatDecider.decide(createGroup, chatDecider.initialState())[0]).toMatchObject({ type: 'ChatCreated', data: { title: '' } });
  });

  it('protects the owner and admins', () => {
    const remove = (actor: string, userId: string): ChatCommand => ({ type: 'RemoveMember', actorUserId: actor, actorDeviceId: dev(actor, 1), userId, lastSeq: 5, now });
    spec.given(...group).when(remove(A, O)).thenThrows('cannot_remove_owner');
    spec.given(...group).when(remove(O, O)).thenThrows('owner_cannot_leave');
    spec.given(...group).when(remove(M, A)).thenThrows('not_an_admin');
    spec.given(...group, role(M, 'admin')).when(remove(M, A)).thenThrows('owner_only');
    spec.given(...group).when(remove(A, N)).thenThrows('member_not_found');
    spec.given(...group).when(remove(N, M)).thenThrows('chat_not_found');
  });

  it('lets only the owner change roles and transfer ownership', () => {
    const change = (actor: string, userId: string, r: Role): ChatCommand => ({ type: 'ChangeRole', actorUserId: actor, userId, role: r, now });
    spec.given(...group).when(change(O, M, 'admin')).then([role(M, 'admin')]);
    spec.given(...group).when(change(O, M, 'member')).then([]);
    spec.given(...group).when(change(O, A, 'owner')).then([role(A, 'owner'), role(O, 'admin')]);
    spec.given(...group).when(change(A, M, 'admin')).thenThrows('owner_only');
    spec.given(...group).when(change(O, O, 'member')).thenThrows('cannot_change_own_role');
    spec.given(...group, role(A, 'owner'), role(O, 'admin')).when(change(O, M, 'admin')).thenThrows('owner_only');
  });

  it('lets only the owner delete a group; a deleted group is gone for everyone', () => {
    const deleted: ChatEvent = { type: 'ChatDeleted', data: { chatId: G, deletedBy: O, memberUserIds: [O, A, M].sort(), occurredAt: now } };
    spec.given(...group).when({ type: 'DeleteChat', actorUserId: O, now }).then([deleted]);
    spec.given(...group).when({ type: 'DeleteChat', actorUserId: A, now }).thenThrows('owner_only');
    spec.given(...group, deleted).when(post()).thenThrows('chat_not_found');
  });

  it('publishes the next epoch: current + 1, linked to the head, signed by an admin device, for the current devices', () => {
    const next = proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)] });
    const publish = (actor: string, p: EpochProposal): ChatCommand => ({ type: 'PublishEpoch', actorUserId: actor, actorDeviceId: dev(actor, 1), epoch: p, now });
    spec.given(...group).when(publish(A, next)).then([published(next)]);
    spec.given(...group).when(publish(M, proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [M, dev(M, 1)] }))).thenThrows('not_an_admin');
    spec.given(...group).when(publish(A, proposal(3, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)] }))).thenThrows('unexpected_epoch');
    spec.given(...group).when(publish(A, proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']], { signer: [A, dev(A, 1)], prevHash: 'other' }))).thenThrows('epoch_prev_hash_mismatch');
    const withNewDevice = { ...directory, [M]: [...directory[M]!, { deviceId: dev(M, 2), signingKey: 'sk' }] };
    spec.given(...group).when(publish(A, { ...next, directory: withNewDevice })).thenThrows('mismatched_devices');
  });

  it('sends only at the current epoch from a listed device, and never while a rotation is required', () => {
    spec.given(...group).when(post()).then([
      { type: 'MessagePosted', data: { chatId: G, chatType: 'group', seq: 7, messageId: 'm0000000-0000-7000-8000-000000000001', senderUserId: M, senderDeviceId: dev(M, 1), epoch: 1, envelope: envelope(), wrappedKeys: [], occurredAt: now } },
    ]);
    const next = proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']]);
    spec.given(...group, published(next)).when(post()).thenThrows('stale_epoch');
    spec.given(...group).when(post({}, { epoch: 2 })).thenThrows('unknown_epoch');
    spec.given(...group, rotation(A, 'member_left')).when(post()).thenThrows('epoch_rotation_required');
    spec.given(...group).when(post({ senderDeviceId: dev(M, 2) }, { sender_device_id: dev(M, 2) })).thenThrows('device_not_in_epoch');
    spec.given(...group).when(post({ wrappedKeys: [{ deviceId: dev(O, 1), wrappedKey: 'k' }] })).thenThrows('unexpected_wrapped_keys');
  });

  it("binds a group message to the stored hash of its epoch (header v2 epoch_hash)", () => {
    spec.given(...group).when(post({}, { epoch_hash: 'hash-of-a-fork' })).thenThrows('envelope_epoch_hash_mismatch');
    try {
      chatDecider.decide(post({}, { epoch_hash: 'hash-of-a-fork' }), group.reduce(chatDecider.evolve, chatDecider.initialState()));
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ kind: 'failed_precondition', details: { current_epoch: 1, epoch_hash: 'hash-1' } });
    }
    const next = proposal(2, [[O, 'admin'], [A, 'admin'], [M, 'member']]);
    spec.given(...group, published(next)).when(post({}, { epoch: 2, epoch_hash: 'hash-1' })).thenThrows('envelope_epoch_hash_mismatch');
    expect(chatDecider.decide(post({}, { epoch: 2, epoch_hash: 'hash-2' }), [...group, published(next)].reduce(chatDecider.evolve, chatDecider.initialState()))).toHaveLength(1);
  });

  it('binds the envelope to the chat, the message id and the sender', () => {
    spec.given(...group).when(post({}, { chat_id: P })).thenThrows('envelope_chat_mismatch');
    spec.given(...group).when(post({}, { message_id: 'm0000000-0000-7000-8000-000000000002' })).thenThrows('envelope_message_id_mismatch');
    spec.given(...group).when(post({}, { sender_user_id: A })).thenThrows('envelope_sender_mismatch');
    spec.given(...group).when(post({}, { scheme: 'direct', epoch: 0 })).thenThrows('envelope_scheme_mismatch');
    spec.given(...group).when(post({ senderUserId: N, senderDeviceId: dev(N, 1) }, { sender_user_id: N, sender_device_id: dev(N, 1) })).thenThrows('chat_not_found');
    spec.given(...group, removed(M)).when(post()).thenThrows('chat_not_found');
  });

  it('requires a rotation when a listed device of a member is revoked (once)', () => {
    const revoke: ChatCommand = { type: 'RequireRotationForDevice', userId: M, deviceId: dev(M, 1), now };
    spec.given(...group).when(revoke).then([rotation(M, 'device_revoked', dev(M, 1))]);
    spec.given(...group, rotation(M, 'device_revoked', dev(M, 1))).when(revoke).then([]);
    spec.given(...group).when({ ...revoke, deviceId: dev(M, 2) } as ChatCommand).then([]);
  });

  it("hands a member's new device the current epoch key; listed devices already have one", () => {
    const withNew: Directory = { ...directory, [M]: [...directory[M]!, { deviceId: dev(M, 2), signingKey: 'sk' }] };
    const add = (deviceId: string, epoch = 1, dir = withNew): ChatCommand => ({ type: 'AddEpochKeys', actorUserId: A, epoch, keys: [{ deviceId, wrappedKey: 'k' }], directory: dir, now });
    spec.given(...group).when(add(dev(M, 2))).then([
      { type: 'EpochKeysAdded', data: { chatId: G, epoch: 1, keys: [{ userId: M, deviceId: dev(M, 2), wrappedKey: 'k' }], addedBy: A, occurredAt: now } },
    ]);
    spec.given(...group).when(add(dev(M, 1))).thenThrows('epoch_key_exists');
    spec.given(...group).when(add(dev(N, 1))).thenThrows('mismatched_devices');
    spec.given(...group).when(add(dev(M, 2), 2)).thenThrows('stale_epoch');
    spec.given(...group, rotation(A, 'member_left')).when(add(dev(M, 2))).thenThrows('epoch_rotation_required');
  });

  it("removes a deleted account, passes a group's ownership on, and requires a rotation", () => {
    spec.given(...group).when({ type: 'RemoveDeletedUser', userId: O, lastSeq: 5, now }).then([
      { type: 'MemberRemoved', data: { chatId: G, userId: O, removedBy: '', reason: 'account_deleted', leftSeq: 5, occurredAt: now } },
      role(A, 'owner', ''),
      rotation(O, 'account_deleted'),
    ]);
    spec.given(...group).when({ type: 'RemoveDeletedUser', userId: N, lastSeq: 5, now }).then([]);
  });

  it('keeps message posts out of the compact state', () => {
    const before = group.reduce(chatDecider.evolve, chatDecider.initialState());
    const [msg] = chatDecider.decide(post(), before);
    expect(chatDecider.evolve(before, msg!)).toBe(before);
  });
});
