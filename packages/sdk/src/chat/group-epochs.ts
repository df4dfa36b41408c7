// Changing a group: every record this device signs is the verified head plus
// what its own user asked for (add, remove, change a role, rename, rotate),
// minus what it verified must go (a member's signed leave, a device no longer
// in its user's signed device list, an account whose signed list is closed).
// The server's member list and roles are never the source; where they differ
// from that result the change is refused (`server_change_unverified`) and
// nothing is signed (docs/protocol.md "Who decides the next epoch").
import {
  createGroup,
  rotateEpoch,
  shareEpochKey,
  signGroupLeave,
  verifyGroupLeave,
  type GroupMemberInput,
  type GroupRole,
  type VerifiedDevice,
} from '@bil/crypto';
import { BilStateError, BilTrustError } from '../errors.js';
import { toChat, type Chat, type ChatJson, type ChatRole } from '../wire.js';
import { chatJson } from './answers.js';
import type { DeviceState } from './device-state.js';
import type { Directory } from './directory.js';
import type { GroupState, GroupStates } from './group-state.js';
import { apiCode, isEpochRace, mismatchedDevices, mismatchedUsers, withRetry } from './retry.js';

/** Owner and admins are `admin` in epoch records. */
export const recordRole = (role: ChatRole): GroupRole => (role === 'member' ? 'member' : 'admin');

/** What this device's user asked for. */
export interface EpochIntent {
  readonly add?: readonly { userId: string; role: GroupRole }[];
  readonly remove?: string;
  readonly role?: { userId: string; role: ChatRole };
  readonly title?: string;
  /** The group's digest setting (signed metadata): `off` keeps every member's server and model digests from sending its messages. */
  readonly digests?: 'allowed' | 'off';
  /** The group's disappearing-message timer in ms (signed metadata; 0 = off). */
  readonly disappearingMs?: number;
}

/** How the record reaches the server: with the membership call it belongs to, or on its own. */
type Via = 'add' | 'remove' | 'publish';

export interface GroupEpochsDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  now(): number;
  /** Remembers a chat the server answered with (and returns it for the caller). */
  remember(c: ChatJson): Promise<Chat>;
}

const enc = encodeURIComponent;

export class GroupEpochs {
  /** `chat:epoch:device` of epoch keys handed to this account's new devices (or found there already). */
  readonly #shared = new Set<string>();
  /** `chat:epoch` heads this client already tried to replace to list new devices. */
  readonly #listing = new Set<string>();

  constructor(
    private readonly deps: GroupEpochsDeps,
    private readonly device: DeviceState,
    private readonly directory: Directory,
    private readonly groups: GroupStates,
  ) {
    device.onReset(() => {
      this.#shared.clear();
      this.#listing.clear();
    });
  }

  /** The chat as the server shows it (members, roles, pending leaves), shape-checked. */
  async serverChat(chatId: string): Promise<ChatJson> {
    return chatJson((await this.deps.call<{ chat: unknown }>('GET', `/v1/chats/${enc(chatId)}`)).chat);
  }

  /** Members with their verified devices (this device's own account included); null for a member whose signed device list is closed. */
  async #memberInput(userId: string, role: GroupRole, chatId: string): Promise<GroupMemberInput | null> {
    const me = await this.device.me();
    let checked = await this.directory.checked(userId);
    if (userId === me.userId && !checked.devices.some((d) => d.deviceId === me.deviceId)) checked = await this.directory.checked(userId, true);
    if (checked.devices.length > 0) return { role, devices: checked.devices };
    if (checked.deviceList?.closed) return null; // the account's signed list names no device: it is gone
    throw new BilTrustError('server_change_unverified', `the directory lists no verified device for member ${userId}`, { chat_id: chatId, user_id: userId, what: 'no devices' });
  }

  /** Creates a group's genesis record: this device's user as admin plus the members asked for. */
  async create(title: string, members: readonly { userId: string; role: GroupRole }[]): Promise<Chat> {
    const me = await this.device.me();
    const others = members.filter((m) => m.userId !== me.userId);
    const chatId = globalThis.crypto.randomUUID();
    return withRetry(
      async () => {
        const inputs: GroupMemberInput[] = [];
        for (const m of [{ userId: me.userId, role: 'admin' as const }, ...others]) {
          const input = await this.#memberInput(m.userId, m.role, chatId);
          if (!input) throw new BilStateError('no_pinned_identity', `${m.userId} has closed their account`);
          inputs.push(input);
        }
        const update = await createGroup({ chatId, admin: me, members: inputs, createdAt: this.deps.now(), metadata: { title } });
        const res = await this.deps.call<{ chat: ChatJson }>('POST', '/v1/chats', {
          type: 'group',
          chat_id: chatId,
          members: others.map((m) => ({ user_id: m.userId, role: m.role })),
          epoch_record: update.record,
          epoch_keys: update.wrappedKeys,
        });
        await this.groups.adopt(chatId, update.chain, update.epochKey);
        // The server knows no title: it is the one this user gave, sealed in the record.
        return { ...(await this.deps.remember(res.chat)), title, titleVerified: true };
      },
      (err) => this.#refreshOnMismatch(err),
    );
  }

  async #refreshOnMismatch(err: unknown): Promise<'retry' | 'fail'> {
    const m = mismatchedDevices(err);
    if (!m) return 'fail';
    const users = mismatchedUsers(m);
    if (users.length === 0) this.directory.forget();
    await Promise.all(users.map((u) => this.directory.checked(u, true)));
    return 'retry';
  }

  /** The users a verified leave says have left the group since the head (invalid leaves count for nothing). */
  async #verifiedLeaves(group: GroupState, chat: ChatJson): Promise<Set<string>> {
    const left = new Set<string>();
    for (const leave of (chat as { pending_leaves?: unknown[] }).pending_leaves ?? []) {
      try {
        const { userId, epoch } = await verifyGroupLeave({ chain: group.chain, leave });
        // A leave counts only if its signer stayed a member from its epoch to the head: an old
        // leave replayed after the user was removed and added again is stale.
        const stayed = group.chain.epochs.slice(epoch - 1).every((e) => e.members.has(userId));
        if (stayed) left.add(userId);
      } catch {
        // not signed by a device the verified history lists: ignored
      }
    }
    return left;
  }

  /**
   * The member list of the next record: the verified head's members (roles
   * from the head, changed only by the intent), minus verified departures,
   * plus the intent's additions; each with its current verified devices.
   */
  async #nextMembers(chatId: string, group: GroupState, chat: ChatJson, intent: EpochIntent): Promise<{ inputs: GroupMemberInput[]; members: Map<string, GroupRole> }> {
    const left = await this.#verifiedLeaves(group, chat);
    const wanted = new Map<string, GroupRole>();
    for (const m of group.chain.head.members.values()) {
      if (m.userId === intent.remove || left.has(m.userId)) continue;
      wanted.set(m.userId, intent.role?.userId === m.userId ? recordRole(intent.role.role) : m.role);
    }
    for (const a of intent.add ?? []) if (!wanted.has(a.userId)) wanted.set(a.userId, a.role);
    const inputs: GroupMemberInput[] = [];
    for (const [userId, role] of wanted) {
      const input = await this.#memberInput(userId, role, chatId);
      if (input) inputs.push(input);
      else wanted.delete(userId);
    }
    return { inputs, members: wanted };
  }

  /** Refuses when the server's member list (after the change the call makes) is not the one this device computed. */
  #compareWithServer(chatId: string, chat: ChatJson, members: Map<string, GroupRole>, intent: EpochIntent, via: Via): void {
    const server = new Map(chat.members.map((m) => [m.user_id, recordRole(m.role)]));
    if (via === 'add') for (const a of intent.add ?? []) server.set(a.userId, a.role);
    if (via === 'remove' && intent.remove) server.delete(intent.remove);
    const claims: string[] = [];
    for (const [userId, role] of server) {
      const ours = members.get(userId);
      if (ours === undefined) claims.push(`the server lists ${userId} as a member, the verified history does not`);
      else if (ours !== role) claims.push(`the server lists ${userId} as ${role}, the verified history as ${ours}`);
    }
    for (const userId of members.keys()) if (!server.has(userId)) claims.push(`the server no longer lists ${userId}, with no leave signed by them`);
    if (claims.length) {
      throw new BilTrustError('server_change_unverified', `refused to sign the next epoch: ${claims.join('; ')}`, { chat_id: chatId, what: claims });
    }
  }

  /** Builds, signs and publishes the next epoch of a group from the verified head and `intent`. */
  async publishNext(chatId: string, intent: EpochIntent, via: Via): Promise<{ epoch: number; chat?: Chat }> {
    const me = await this.device.me();
    await this.groups.requireNoFork(chatId);
    return withRetry(
      async () => {
        const group = await this.groups.get(chatId, true);
        const mine = group.chain.head.members.get(me.userId);
        if (!mine?.devices.has(me.deviceId)) throw new BilStateError('not_in_epoch', 'this device is not in the current epoch of the group; another device of an admin must list it first');
        const selfOnly = intent.add === undefined && intent.role === undefined && intent.title === undefined && intent.remove === undefined && intent.digests === undefined && intent.disappearingMs === undefined;
        if (mine.role !== 'admin' && !selfOnly) throw new BilStateError('not_an_admin', 'only an admin of the group may change it');
        const chat = await this.serverChat(chatId);
        const { inputs, members } = await this.#nextMembers(chatId, group, chat, intent);
        this.#compareWithServer(chatId, chat, members, intent, via);
        const current = await this.groups.metadata(group);
        const title = intent.title ?? current?.title ?? chat.title;
        // Settings are carried over; one this device can't read (no key for the head) is written as the most private value.
        const digests = intent.digests ?? (current === undefined || current?.digests === 'off' ? 'off' : 'allowed');
        // The timer is carried over too (one this device can't read is not written: the server still enforces its own).
        const timer = intent.disappearingMs ?? current?.disappearing_ms ?? 0;
        const metadata = { title, ...(digests === 'off' ? { digests } : {}), ...(timer > 0 ? { disappearing_ms: timer } : {}) };
        let update: Awaited<ReturnType<typeof rotateEpoch>>;
        try {
          update = await rotateEpoch({ chain: group.chain, signer: me, members: inputs, createdAt: this.deps.now(), metadata });
        } catch (err) {
          // A non-admin may only re-key the same members (or drop devices of their own).
          if (err instanceof TypeError && mine.role !== 'admin') throw new BilStateError('not_an_admin', 'only an admin of the group may make this change');
          throw err;
        }
        const keys = { epoch_record: update.record, epoch_keys: update.wrappedKeys };
        let chatOut: Chat | undefined;
        if (via === 'add') {
          const res = await this.deps.call<{ chat: ChatJson }>('POST', `/v1/chats/${enc(chatId)}/members`, {
            members: (intent.add ?? []).map((a) => ({ user_id: a.userId, role: a.role })),
            ...keys,
          });
          chatOut = { ...(await this.deps.remember(res.chat)), title, titleVerified: true };
        } else if (via === 'remove') {
          await this.deps.call('DELETE', `/v1/chats/${enc(chatId)}/members/${enc(intent.remove!)}`, keys);
        } else {
          await this.deps.call('POST', `/v1/chats/${enc(chatId)}/keys`, keys);
        }
        await this.groups.adopt(chatId, update.chain, update.epochKey);
        return { epoch: update.chain.head.epoch, ...(chatOut ? { chat: chatOut } : {}) };
      },
      async (err) => ((await this.#refreshOnMismatch(err)) === 'retry' || isEpochRace(err) ? 'retry' : 'fail'),
    );
  }

  /**
   * The server says the group needs a new epoch (a member left, a device was
   * revoked): an admin's device publishes one built from verified data; for
   * anyone else `reason` stands. A claim this device can't verify is refused
   * by publishNext.
   */
  async rotateIfAdmin(chatId: string, reason: unknown): Promise<void> {
    const me = await this.device.me();
    const group = await this.groups.get(chatId, true);
    const mine = group.chain.head.members.get(me.userId);
    // Only a device the head lists may sign the next record: a device linked since waits for another device of an admin.
    if (mine?.role !== 'admin' || !mine.devices.has(me.deviceId)) throw reason;
    try {
      await this.publishNext(chatId, {}, 'publish');
    } catch (err) {
      if (!isEpochRace(err)) throw err; // another admin rotated at the same time: the caller syncs
    }
  }

  /** Leaves a group with a leave signed by this device at the verified head. */
  async leave(chatId: string): Promise<void> {
    const me = await this.device.me();
    const group = await this.groups.get(chatId, true);
    const leave = signGroupLeave({ chain: group.chain, device: me, createdAt: this.deps.now() });
    await this.deps.call('DELETE', `/v1/chats/${enc(chatId)}/members/${enc(me.userId)}`, { leave });
    this.groups.forget(chatId);
  }

  /**
   * Hands this account's devices that the current epoch doesn't list (linked
   * since) the current epoch key, so they can read at once; if this user is an
   * admin, then publishes the next epoch listing them, so they can send. Best
   * effort: failures are retried on a later use. True when it published.
   */
  async shareWithNewDevices(chatId: string, group: GroupState): Promise<boolean> {
    try {
      const me = await this.device.me();
      const head = group.chain.head;
      const mine = head.members.get(me.userId);
      if (!mine?.devices.has(me.deviceId)) return false;
      const unlisted = (await this.directory.ownDevices()).filter((d) => !mine.devices.has(d.deviceId));
      if (unlisted.length === 0) return false;
      const key = await this.groups.epochKey(group, head.epoch);
      if (!key) return false;
      for (const device of unlisted) await this.#share(chatId, group, key, device);
      const listing = `${chatId}:${head.epoch}`;
      if (mine.role !== 'admin' || this.#listing.has(listing)) return false;
      this.#listing.add(listing);
      try {
        await this.publishNext(chatId, {}, 'publish');
      } catch {
        this.#listing.delete(listing); // e.g. another admin published first: the next use looks again
        return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  async #share(chatId: string, group: GroupState, key: NonNullable<Awaited<ReturnType<GroupStates['epochKey']>>>, device: VerifiedDevice): Promise<void> {
    const tag = `${chatId}:${group.chain.head.epoch}:${device.deviceId}`;
    if (this.#shared.has(tag)) return;
    const row = await shareEpochKey({ chain: group.chain, epochKey: key, device });
    await withRetry(
      async () => {
        try {
          await this.deps.call('POST', `/v1/chats/${enc(chatId)}/keys/${group.chain.head.epoch}/devices`, { epoch_keys: [row] });
        } catch (err) {
          if (apiCode(err) !== 'epoch_key_exists') throw err;
        }
        this.#shared.add(tag);
      },
      // The chat service learns of a new device from identity's events, a moment later.
      async (err) => (apiCode(err) === 'mismatched_devices' || apiCode(err) === 'unknown_device' ? 'retry' : 'fail'),
    ).catch(() => undefined);
  }

  /** The verified members of a group and how the server's list differs from them. */
  async verifiedView(chatId: string, chat: ChatJson): Promise<Pick<Chat, 'verifiedMembers' | 'memberListMismatch' | 'title' | 'titleVerified'> & { members: Chat['members'] }> {
    // The server says a newer epoch exists: verify it before showing members (a lower one changes nothing).
    let group = await this.groups.get(chatId);
    if (chat.epoch > group.chain.head.epoch || !group.keys.has(group.chain.head.epoch)) group = await this.groups.get(chatId, true);
    const head = group.chain.head;
    const server = new Map(chat.members.map((m) => [m.user_id, m]));
    const verifiedMembers = [...head.members.values()].map((m) => ({ userId: m.userId, role: m.role, identityKey: m.identityKey, deviceIds: [...m.devices.keys()] }));
    const extraOnServer = chat.members.filter((m) => !head.members.has(m.user_id)).map((m) => m.user_id);
    const missingOnServer = verifiedMembers.filter((m) => !server.has(m.userId)).map((m) => m.userId);
    const roleDiffers = verifiedMembers.filter((m) => server.has(m.userId) && recordRole(server.get(m.userId)!.role) !== m.role).map((m) => m.userId);
    const mismatch = extraOnServer.length || missingOnServer.length || roleDiffers.length ? { extraOnServer, missingOnServer, roleDiffers } : null;
    // People see the record's members; the owner (a server role within `admin`) and join times come from the server where it agrees.
    const members = verifiedMembers.map((m) => {
      const s = server.get(m.userId);
      const role: ChatRole = m.role === 'admin' ? (s?.role === 'owner' ? 'owner' : 'admin') : 'member';
      return { userId: m.userId, role, joinedAt: s?.joined_at ?? '', joinedSeq: s?.joined_seq ?? 0 };
    });
    const title = await this.groups.title(group);
    return { verifiedMembers, memberListMismatch: mismatch, members, title: title ?? toChat(chat).title, titleVerified: title !== null };
  }
}
