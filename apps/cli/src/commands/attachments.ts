// `bil send <chat> --file <path> [text]` and `bil download <chat> <message-id>`:
// files encrypted on this device and streamed (client.attachments), never
// read into memory whole; a download is written to `<out>.part` and renamed
// only once the whole file decrypted and its digest matched.
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { AttachmentRef, HistoryMessage } from '@bil/sdk';
import type { App } from '../app.js';
import { usage } from '../errors.js';
import { chatLabel, safe } from '../format.js';

const MIME: Record<string, string> = {
  '.txt': 'text/plain',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.mp4': 'video/mp4',
  '.zip': 'application/zip',
  '.json': 'application/json',
};
/** Pages of history searched for a message id (200 messages each). */
const MAX_PAGES = 50;

export async function sendFile(app: App, ref: string, path: string, text: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw usage(`--file: ${path} is not a readable file`);
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const name = basename(path);
  const attachment = await client.attachments.upload(chat.chatId, path, { name, mime: MIME[extname(name).toLowerCase()] ?? 'application/octet-stream' });
  const sent = await client.attachments.send(chat.chatId, [attachment], text);
  const label = chatLabel(chat, app.names());
  const s = app.out.style;
  app.out.result({ ...sent, label, attachment: { name, size: attachment.size, blob_id: attachment.blob_id } }, () => [
    `${s.green('Sent')} ${safe(name)} (${attachment.size} bytes) to ${safe(label)} ${s.dim(`(seq ${sent.seq}, encrypted on this device)`)}`,
  ]);
}

async function findMessage(app: App, chatId: string, messageId: string): Promise<HistoryMessage> {
  const { client } = await app.open();
  let before: number | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const p = await client.messages.history(chatId, { limit: 200, ...(before !== undefined ? { before } : {}) });
    const found = p.messages.find((m) => m.messageId === messageId);
    if (found) return found;
    if (!p.hasMore || p.messages.length === 0) break;
    before = p.messages[0]!.seq;
  }
  throw usage(`no message ${messageId} in this chat's last ${MAX_PAGES * 200} messages`);
}

export async function download(app: App, ref: string, messageId: string, o: { out?: string }): Promise<void> {
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const m = await findMessage(app, chat.chatId, messageId);
  if (!m.ok) throw usage(`message ${messageId} could not be decrypted here (${m.error})`);
  const refs: readonly AttachmentRef[] = m.attachments ?? [];
  if (refs.length === 0) throw usage(`message ${messageId} has no attachment`);
  if (o.out && refs.length > 1) throw usage('--out names one file, and this message has several attachments: leave it out');
  const written: Array<{ path: string; size: number }> = [];
  for (const a of refs) {
    // The sender chose the name: only its last path component, and never over an existing file unless --out says so.
    const path = resolve(o.out ?? (basename(a.name).replace(/^\.+/, '') || 'attachment'));
    if (!o.out && (await stat(path).catch(() => undefined))) throw usage(`${path} exists: give --out`);
    const part = `${path}.part`;
    try {
      await pipeline(Readable.from(client.attachments.download(a)), createWriteStream(part, { mode: 0o600 }));
      await rename(part, path);
    } catch (err) {
      await rm(part, { force: true });
      throw err;
    }
    written.push({ path, size: a.size });
  }
  app.out.result({ message_id: messageId, files: written }, () => written.map((w) => `${app.out.style.green('Saved')} ${safe(w.path)} (${w.size} bytes, digest checked)`));
}
