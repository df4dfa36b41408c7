// Where this browser keeps its device: two sealed records in IndexedDB
// (database "bil-message", store "sealed"): "profile" (the SDK's profile:
// keys, tokens, pins) and "names" (user names this device learned). Both are
// sealed under the passphrase by the SDK's SealedKeyStore / SealedJsonStore
// (scrypt + AES-256-GCM, FileKeyStore's format), so IndexedDB holds only
// ciphertext. Nothing goes to localStorage.
import { SealedJsonStore, SealedKeyStore, type SealedStorage } from '@bil/sdk';

const DB = 'bil-message';
const STORE = 'sealed';

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB is not available'));
  });
}

async function run<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      // Resolve once the transaction committed, so a write is durable when the SDK's save returns.
      tx.oncomplete = () => resolve(req.result as T);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

/** One sealed text in IndexedDB under `key`. */
export function idbStorage(key: string): SealedStorage {
  return {
    read: async () => (await run<string | undefined>('readonly', (s) => s.get(key))) ?? null,
    write: async (text) => {
      await run('readwrite', (s) => s.put(text, key));
    },
    remove: async () => {
      await run('readwrite', (s) => s.delete(key));
    },
  };
}

/** True when this browser holds a device (sealed; the passphrase opens it). */
export async function hasDevice(): Promise<boolean> {
  return (await idbStorage('profile').read()) !== null;
}

/** Deletes this browser's device and everything it learned. */
export async function forgetDevice(): Promise<void> {
  await idbStorage('profile').remove();
  await idbStorage('names').remove();
}

export type Names = Record<string, string>;

function parseNames(value: unknown): Names {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError('names: expected an object');
  for (const v of Object.values(value)) if (typeof v !== 'string') throw new TypeError('names: expected strings');
  return value as Names;
}

export function keyStores(passphrase: string): { profile: SealedKeyStore; names: SealedJsonStore<Names> } {
  return {
    profile: new SealedKeyStore(idbStorage('profile'), passphrase),
    names: new SealedJsonStore(idbStorage('names'), passphrase, { parse: parseNames }),
  };
}
