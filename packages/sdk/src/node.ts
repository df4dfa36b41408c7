// Entry "@bil/sdk/node": what only works in Node (file system, and the native
// node:crypto AEAD backend, same wire format, ~4-6x faster than WebCrypto in
// Node). Everything in the main entry is re-exported so a Node app needs one import.
import { useNodeCrypto } from '@bil/crypto/node';

useNodeCrypto();

export * from './index.js';
export { FileKeyStore, KEY_STORE_FORMAT, MIN_SCRYPT_LOG2N, type KeyStoreHeader } from './file-key-store.js';
