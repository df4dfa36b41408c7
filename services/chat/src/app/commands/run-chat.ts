// How every chat command is handled: lock the chat's row → load → decide →
// append (EventStore.handleIn), in the caller's transaction or in one of its
// own retried on a concurrency conflict (EventStore.transact).
//
// Every write to a chat first takes its `chats` row lock, so all writers of
// one chat (senders, membership changes, the identity consumer) are
// serialised on that row and decide on the state as of the lock; writers of
// different chats never wait for each other. The send path
// (send/message-writer.ts) takes the same lock for its batches.
import type { EventMetadata, EventStore, Handled, Tx } from '@bil/runtime';
import { chatDecider, chatStream, type ChatCommand, type ChatEvent, type ChatState } from '../../domain/chat/chat.js';
import { meta, type Actor, type ChatDeps } from '../context.js';
import { requireUsableDevice } from '../repository.js';

export type HandledChat = Handled<ChatEvent, ChatState>;

/**
 * One command from a caller, in its own transaction: the calling device must
 * be usable, then the command is built on the locked chat's state (`lastSeq`:
 * the chat's last message seq as of the lock) and handled. A creation race
 * (two first appends) is retried; decide is pure.
 */
export async function runChat(
  deps: ChatDeps,
  actor: Actor,
  chatId: string,
  build: (ctx: { tx: Tx; state: ChatState; lastSeq: number }) => ChatCommand | Promise<ChatCommand>,
): Promise<HandledChat> {
  return deps.store.transact(async (tx) => {
    await requireUsableDevice(tx, actor);
    return executeChat(deps.store, tx, chatId, (lastSeq, state) => build({ tx, state, lastSeq }), meta(actor));
  });
}

/** Lock → load → decide → append for one chat inside an open transaction. */
export async function executeChat(
  store: EventStore,
  tx: Tx,
  chatId: string,
  build: (lastSeq: number, state: ChatState) => ChatCommand | Promise<ChatCommand>,
  metadata: EventMetadata,
): Promise<HandledChat> {
  const lastSeq = await lockChat(tx, chatId);
  return store.handleIn(tx, chatDecider, chatStream(chatId), ({ state }) => build(lastSeq, state), { metadata });
}

/** Takes the chat's row lock; its last message seq (0 for a chat not created yet). */
async function lockChat(tx: Tx, chatId: string): Promise<number> {
  const [locked] = await tx.query<{ last_seq: string }>(`SELECT last_seq FROM chat.chats WHERE chat_id = ? FOR UPDATE`, [chatId]);
  return locked ? Number(locked.last_seq) : 0;
}
