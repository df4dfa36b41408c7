// What one device remembers about its chats (counters, the replay guard,
// verified heads and hashes, fork alerts, checked personal chats), bound to
// the profile it was loaded from: when the profile changes (another device
// signs in on this client), everything cached for the old one is dropped.
import { importDevicePrivateKeys, ReplayGuard, type LocalDevice } from '@bil/crypto';
import type { StoredChatState, StoredProfile } from '../key-store.js';

function emptyState(): StoredChatState {
  return { counters: {}, replay: { version: 1, chats: {} }, seen: {}, heads: {} };
}

export class DeviceState {
  #deviceId: string | null = null;
  #local: LocalDevice | null = null;
  #state: StoredChatState = emptyState();
  #replay = new ReplayGuard();
  /** message id → counter of messages this client sent, so a resend reuses its counter. */
  readonly #counterOf = new Map<string, number>();
  readonly #onReset: (() => void)[] = [];

  constructor(
    private readonly deps: {
      profile(): Promise<StoredProfile>;
      save(state: StoredChatState): Promise<void>;
    },
  ) {}

  /** Registers what to forget when the profile changes. */
  onReset(fn: () => void): void {
    this.#onReset.push(fn);
  }

  /** This device's keys, with the messaging state of its profile loaded. */
  async me(): Promise<LocalDevice> {
    const profile = await this.deps.profile();
    if (this.#deviceId !== profile.deviceId || !this.#local) {
      const keys = await importDevicePrivateKeys(profile.deviceKeys);
      this.#deviceId = profile.deviceId;
      this.#local = { userId: profile.userId, deviceId: profile.deviceId, keys };
      this.#state = profile.chats ?? emptyState();
      this.#replay = new ReplayGuard(this.#state.replay);
      // Profiles from before the guard kept sightings know accepted messages by their seq (`seen`): bind it.
      for (const [chatId, ids] of Object.entries(this.#state.seen)) {
        for (const [messageId, seq] of Object.entries(ids)) {
          try {
            this.#replay.place({ chat_id: chatId, message_id: messageId, seq, envelope_sha256: '' });
          } catch {
            // seen but never accepted, or already bound elsewhere: the guard's record stands
          }
        }
      }
      this.#counterOf.clear();
      for (const fn of this.#onReset) fn();
    }
    return this.#local;
  }

  get state(): StoredChatState {
    return this.#state;
  }

  get replay(): ReplayGuard {
    return this.#replay;
  }

  async save(patch: Partial<StoredChatState>): Promise<void> {
    this.#state = { ...this.#state, ...patch, replay: this.#replay.snapshot() };
    await this.deps.save(this.#state);
  }

  /** Reserves the next counter of this device in a chat and persists it before anything is sent with it. */
  async nextCounter(chatId: string, messageId: string): Promise<number> {
    const known = this.#counterOf.get(messageId);
    if (known !== undefined) return known;
    const counter = (this.#state.counters[chatId] ?? 0) + 1;
    this.#counterOf.set(messageId, counter);
    await this.save({ counters: { ...this.#state.counters, [chatId]: counter } });
    return counter;
  }

  /** The server acknowledged storing this device's message at `seq` (a later history missing it is a truncated tail). */
  async acknowledged(chatId: string, messageId: string, seq: number): Promise<void> {
    const counter = this.#counterOf.get(messageId);
    const acked = this.#state.acked ?? {};
    if (counter === undefined || (acked[chatId]?.counter ?? 0) >= counter) return;
    await this.save({ acked: { ...acked, [chatId]: { counter, seq } } });
  }
}
