// The chats' decider states as the send path needs them, kept in memory.
//
// A chat's state changes only with an event on its own stream (membership,
// roles, epochs), never with a message, and every such event sets the chat
// row's `chat_version` to the stream's version in the same transaction (the
// read-models projection). The send path locks the chat rows first
// (FOR UPDATE, so what it reads of them is the committed latest) and asks
// here with each row's chat_version: a state cached at that version is the
// current one; any other is loaded again from the stream's state row (one
// statement for the batch's misses, after the lock, so it sees what the
// lock waited for). The hot path reads no stream state and no SQL reaches
// into a state's JSON.
//
// Bounded by weight (1 + members per chat), least recently used out first.
import { WeightedLru, type EventStore, type Sql } from '@bil/runtime';
import { chatDecider, chatStream, type ChatState } from '../../domain/chat/chat.js';

export interface ChatAtVersion {
  chatId: string;
  /** chats.chat_version, read under the chat's row lock. */
  version: number;
}

interface Entry {
  version: number;
  state: ChatState;
}

export class ChatStates {
  private readonly entries: WeightedLru<string, Entry>;

  constructor(
    private readonly store: EventStore,
    /** Most cached weight: about one unit per member (default 200,000). */
    maxWeight = 200_000,
  ) {
    this.entries = new WeightedLru(maxWeight);
  }

  /** The current state of each locked chat, by chat id. */
  async current(q: Sql, chats: readonly ChatAtVersion[]): Promise<Map<string, ChatState>> {
    const out = new Map<string, ChatState>();
    const missing: ChatAtVersion[] = [];
    for (const c of chats) {
      const e = this.entries.get(c.chatId);
      if (e && e.version === c.version) out.set(c.chatId, e.state);
      else missing.push(c);
    }
    if (missing.length === 0) return out;
    const loaded = await this.store.loadMany(q, chatDecider, missing.map((c) => chatStream(c.chatId)));
    for (const c of missing) {
      const l = loaded.get(chatStream(c.chatId));
      const state: ChatState = l?.state ?? chatDecider.initialState();
      out.set(c.chatId, state);
      // Cached at the version it was read at (the same as the row's, both read under the lock).
      if (l) this.entries.set(c.chatId, { version: l.version, state }, 1 + ('members' in state ? Object.keys(state.members).length : 0));
    }
    return out;
  }

  /** Cached chats (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }
}
