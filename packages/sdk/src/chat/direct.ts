// Personal chats: the chat is bound to both people (its id derives from the
// two user ids, recomputed here, and each signed header names the other
// user), and every message key is wrapped to each verified device of both.
import { decryptDirectMessage, encryptDirectMessage, personalChatId, type OpenedMessage } from '@bil/crypto';
import { BilStateError, BilTrustError } from '../errors.js';
import type { ChatJson, MessageJson, WrappedKeyJson } from '../wire.js';
import type { DeviceState } from './device-state.js';
import type { Directory } from './directory.js';

export class DirectChats {
  constructor(
    private readonly device: DeviceState,
    private readonly directory: Directory,
  ) {}

  /** The verified other user of a personal chat this device checked before, if any. */
  async knownPeer(chatId: string): Promise<string | undefined> {
    await this.device.me();
    return this.device.state.peers?.[chatId];
  }

  /**
   * Checks a personal chat the server answered with: its id must be the one
   * derived from this user and the peer it names, and a chat checked before
   * keeps its peer. Returns the peer.
   */
  async verify(c: ChatJson, expectedPeer?: string): Promise<string> {
    const peer = await this.check(c, expectedPeer);
    await this.remember([[c.chat_id, peer]]);
    return peer;
  }

  /** Remembers checked personal chats (one write for many). */
  async remember(checked: readonly (readonly [string, string])[]): Promise<void> {
    const peers = this.device.state.peers ?? {};
    const fresh = checked.filter(([chatId]) => peers[chatId] === undefined);
    if (fresh.length) await this.device.save({ peers: { ...peers, ...Object.fromEntries(fresh) } });
  }

  /** {@link verify} without remembering the result. */
  async check(c: ChatJson, expectedPeer?: string): Promise<string> {
    const me = await this.device.me();
    const peer = c.peer_user_id;
    const refuse = (why: string) => new BilTrustError('chat_id_mismatch', `the server's personal chat ${c.chat_id} is not the chat with ${expectedPeer ?? peer}: ${why}`, { chat_id: c.chat_id, user_id: peer });
    if (expectedPeer !== undefined && peer !== expectedPeer) throw refuse('it names another user');
    let derived: string;
    try {
      derived = await personalChatId(me.userId, peer);
    } catch {
      throw refuse('it names no other user');
    }
    if (derived !== c.chat_id) throw refuse('its id is not derived from the two user ids');
    const known = this.device.state.peers?.[c.chat_id];
    if (known !== undefined && known !== peer) throw refuse('this device checked it before with another user');
    return peer;
  }

  /** The body of a personal message: encrypted once, the key wrapped to every verified device of both users (this one included). */
  async encrypt(chatId: string, peer: string, messageId: string, counter: number, plaintext: Uint8Array, now: number): Promise<{ message_id: string; envelope: unknown; wrapped_keys: WrappedKeyJson[] }> {
    const me = await this.device.me();
    await this.directory.own();
    const [mine, theirs] = await Promise.all([this.directory.verified(me.userId), this.directory.verified(peer)]);
    if (theirs.length === 0) throw new BilStateError('no_pinned_identity', `${peer} has no device certified by the pinned identity key`);
    const msg = await encryptDirectMessage({ sender: me, chatId, messageId, counter, timestamp: now, plaintext, recipients: [...mine, ...theirs], recipientUserId: peer });
    return { message_id: messageId, envelope: msg.envelope, wrapped_keys: [...msg.wrapped_keys] };
  }

  /** Opens a personal message (this device's own ones too: their key is wrapped to it as well). */
  async open(chatId: string, peer: string, m: MessageJson, replay: Parameters<typeof decryptDirectMessage>[0]['replay']): Promise<OpenedMessage | undefined> {
    const me = await this.device.me();
    if (m.sender_user_id !== me.userId && m.sender_user_id !== peer) return undefined;
    const sender = await this.directory.sender(m.sender_user_id, m.sender_device_id);
    if (!sender) return undefined;
    return decryptDirectMessage({ envelope: m.envelope, wrappedKey: m.wrapped_key, recipient: me, chatId, sender, chatUsers: [me.userId, peer], ...(replay ? { replay } : {}) });
  }
}
