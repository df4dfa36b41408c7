// bil delete <chat> <message>: delete one of your messages for everyone (a
// tombstone signed by this device; the server erases the ciphertext and keys).
import type { App } from '../app.js';
import { usage } from '../errors.js';
import { safe } from '../format.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A message by its id, or by its sequence number in the chat (as `bil history` shows it). */
async function messageIdOf(app: App, chatId: string, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  if (!/^[1-9]\d{0,15}$/.test(ref)) throw usage(`"${safe(ref)}" is neither a message id nor a sequence number`, 'bil history <chat> shows both');
  const seq = Number(ref);
  const { client } = await app.open();
  const page = await client.messages.history(chatId, { after: seq - 1, limit: 1 });
  const m = page.messages.find((x) => x.seq === seq);
  if (!m) throw usage(`no message ${seq} in this chat`);
  return m.messageId;
}

export async function deleteMessage(app: App, ref: string, message: string): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const messageId = await messageIdOf(app, chat.chatId, message.trim().toLowerCase());
  const res = await client.chats.deleteForEveryone(chat.chatId, messageId);
  app.out.result({ chatId: chat.chatId, messageId, seq: res.seq, deleted: res.deleted }, () => [
    res.deleted ? `Deleted message ${res.seq} for everyone (signed by this device).` : `Message ${res.seq} was already deleted.`,
  ]);
}
