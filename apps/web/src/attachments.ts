// Files in messages (sdk.md "Attachments"): the browser encrypts as it reads
// the file (progress is what has been read and encrypted), makes an image's
// thumbnail itself with a canvas (the server never sees the image; ≤ 32 KiB,
// JPEG), and downloads by decrypting in the page into a Blob, kept only once
// the digest matched (the SDK throws on any tampering).
import type { AttachmentRef, BilClient } from '@bil/sdk';

/** The thumbnail's longest side, in CSS pixels. */
const THUMB_PX = 160;
const MAX_THUMB_BYTES = 32 * 1024;

const b64url = (bytes: Uint8Array): string => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

/** A data: URL of a thumbnail (base64url in the ref, base64 in the URL); only image types a canvas writes. */
export function thumbnailUrl(ref: AttachmentRef): string | null {
  const t = ref.thumbnail;
  if (!t || !/^image\/(jpeg|png|webp)$/.test(t.mime)) return null;
  return `data:${t.mime};base64,${t.data.replace(/-/g, '+').replace(/_/g, '/')}`;
}

/** A small JPEG of an image file, made in the browser; null when the browser can't read it as an image. */
async function thumbnail(file: File): Promise<AttachmentRef['thumbnail'] | null> {
  if (!file.type.startsWith('image/')) return null;
  const bitmap = await createImageBitmap(file).catch(() => null);
  if (!bitmap) return null;
  const scale = Math.min(1, THUMB_PX / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d')?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  for (const quality of [0.7, 0.5, 0.3]) {
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
    if (blob && blob.size <= MAX_THUMB_BYTES) return { mime: 'image/jpeg', data: b64url(new Uint8Array(await blob.arrayBuffer())), width: canvas.width, height: canvas.height };
  }
  return null;
}

/** The file's bytes as they are read, reporting how many so far. */
async function* reading(file: File, onProgress: (done: number) => void): AsyncIterable<Uint8Array> {
  const reader = file.stream().getReader();
  let done = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) return;
    done += r.value.byteLength;
    onProgress(done);
    yield r.value;
  }
}

/** Encrypts and uploads one file for the chat (with a thumbnail if it is an image); `onProgress` gets 0..1. */
export async function uploadFile(client: BilClient, chatId: string, file: File, onProgress: (fraction: number) => void): Promise<AttachmentRef> {
  const thumb = await thumbnail(file);
  onProgress(0);
  const ref = await client.attachments.upload(chatId, reading(file, (n) => onProgress(file.size ? n / file.size : 1)), {
    name: file.name || 'file',
    mime: file.type || 'application/octet-stream',
    size: file.size,
    ...(thumb ? { thumbnail: thumb } : {}),
  });
  onProgress(1);
  return ref;
}

/** Downloads and decrypts an attachment into a Blob (only once the SDK checked every chunk and the digest). */
export async function downloadFile(client: BilClient, ref: AttachmentRef): Promise<Blob> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for await (const bytes of client.attachments.download(ref)) parts.push(new Uint8Array(bytes));
  return new Blob(parts, { type: ref.mime });
}

/** Saves a Blob under a name (an <a download> click on an object URL). */
export function save(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
