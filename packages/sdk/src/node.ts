// Entry "@bil/sdk/node": what only works in Node (file system, and the native
// node:crypto AEAD backend, same wire format, ~4-6x faster than WebCrypto in
// Node). Everything in the main entry is re-exported so a Node app needs one import.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { useNodeCrypto } from '@bil/crypto/node';
import { setAttachmentFileOpener } from './attachments.js';

useNodeCrypto();
// client.attachments.upload takes file paths: read as a stream, never whole.
setAttachmentFileOpener(async (path) => {
  const s = await stat(path);
  if (!s.isFile()) throw new TypeError(`source: ${path} is not a file`);
  return { size: s.size, chunks: () => createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<Uint8Array> };
});

export * from './index.js';
export { FileKeyStore, KEY_STORE_FORMAT, MIN_SCRYPT_LOG2N, type KeyStoreHeader } from './file-key-store.js';
