// react, edit, delete --for-me (docs/cli.md "Replies, reactions, edits");
// send --reply resolves its target here too. A message is named by its id or
// by its seq number in the chat (what bil history shows).
import { isReactionEmoji, type BilClient, type SendResult } from '@bil/sdk';
import type { App } from '../app.js';
import { CliError, ExitCode, usage } from '../errors.js';
import { chatLabel, safe } from '../format.js';
import { deleteMessage } from './delete.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A message reference: a message id, or a seq number of the chat (looked up in history). */
export async function messageRef(client: BilClient, chatId: string, ref: string): Promise<string> {
  const r = ref.trim().toLowerCase();
  if (UUID.test(r)) return r;
  if (!/^[0-9]+$/.test(r) || !Number.isSafeInteger(Number(r)) || Number(r) < 1) {
    throw usage(`message: expected a message id or a seq number (bil history shows them), not "${ref}"`);
  }
  const seq = Number(r);
  const page = await client.messages.history(chatId, { after: seq - 1, limit: 1, includeUpdates: true });
  const m = page.messages.find((x) => x.seq === seq);
  if (!m) throw new CliError('unknown_message', `no message ${seq} in this chat`, ExitCode.notFound, 'bil history <chat> shows the messages and their numbers');
  return m.messageId;
}

function sentLine(app: App, what: string, label: string, r: SendResult): string[] {
  const s = app.out.style;
  return [`${s.green(what)} ${safe(label)} ${s.dim(`(seq ${r.seq}, encrypted on this device)`)}`];
}

export async function react(app: App, ref: string, message: string, emoji: string, o: { remove?: boolean }): Promise<void> {
  if (!isReactionEmoji(emoji)) throw usage('emoji: expected one emoji (one grapheme cluster of at most 32 bytes)');
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const target = await messageRef(client, chat.chatId, message);
  const sent = await client.messages.react(chat.chatId, target, emoji, { remove: o.remove === true });
  const label = chatLabel(chat, app.names());
  app.out.result({ ...sent, label, target, emoji, removed: o.remove === true }, () =>
    sentLine(app, o.remove ? `Took back ${emoji} in` : `Reacted ${emoji} in`, label, sent),
  );
}

export async function edit(app: App, ref: string, message: string, words: string[]): Promise<void> {
  const text = words.join(' ');
  if (text.trim() === '') throw usage('the new text is empty');
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const target = await messageRef(client, chat.chatId, message);
  const sent = await client.messages.edit(chat.chatId, target, text);
  const label = chatLabel(chat, app.names());
  app.out.result({ ...sent, label, target }, () => sentLine(app, 'Edited your message in', label, sent));
}

export async function remove(app: App, ref: string, message: string, o: { forMe?: boolean }): Promise<void> {
  if (!o.forMe) return deleteMessage(app, ref, message);
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const target = await messageRef(client, chat.chatId, message);
  await client.messages.deleteForMe(chat.chatId, target);
  const label = chatLabel(chat, app.names());
  const s = app.out.style;
  app.out.result({ chatId: chat.chatId, label, messageId: target, deleted: 'for_me' }, () => [
    `${s.green('Deleted for you')} in ${safe(label)} ${s.dim('(this profile only: other devices and members still have it)')}`,
  ]);
}
