// Entry "@bil/sdk/node": what only works in Node (file system). Everything in
// the main entry is re-exported so a Node app needs one import.
export * from './index.js';
export { FileKeyStore, KEY_STORE_FORMAT, MIN_SCRYPT_LOG2N, type KeyStoreHeader } from './file-key-store.js';
