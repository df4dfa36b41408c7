// Where this browser keeps its device: two sealed records in IndexedDB
// (database "bil-message", store "sealed"): "profile" (the SDK's profile:
// keys, tokens, pins) and "app" (user names this device learned, messages
// waiting to be sent). Both are
// sealed under the passphrase by the SDK's SealedKeyStore / SealedJsonStore
// (scrypt + AES-256-GCM, FileKeyStore's format), so IndexedDB holds only
// ciphertext. Nothing goes to localStorage.
import { SealedJsonStore, SealedKeyStore, type SealedStorage } from '@bil/sdk';

const DB = 'bil-message';
const STORE = 'sealed';

/** The open database, kept between reads and writes (opening it for each one cost more than the write). */
let opened: Promise<IDBDatabase> | null = null;

function openDb(): Promise<IDBDatabase> {
  opened ??= new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => {
      const db = req.result;
      // Another tab deleting or upgrading the database, or the browser closing it: open it afresh next time.
      db.onversionchange = () => {
        db.close();
        opened = null;
      };
      db.onclose = () => {
        opened = null;
      };
      resolve(db);
    };
    req.onerror = () => {
      opened = null;
      reject(req.error ?? new Error('IndexedDB is not available'));
    };
  });
  return opened;
}

async function run<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await openDb();
  return new Promise<T>((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    // Resolve once the transaction committed, so a write is durable when the SDK's save returns.
    tx.oncomplete = () => resolve(req.result as T);
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
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
  await idbStorage('app').remove();
}

export type Names = Record<string, string>;
/** Per chat, messages written but not stored by the server yet (resent with the same id). */
export type Outbox = Record<string, { messageId: string; text: string; replyTo?: string }[]>;
/** What the app keeps beside the SDK's profile, sealed the same way. */
export interface AppData {
  names: Names;
  outbox: Outbox;
  /** An account created whose device step failed (before there is a profile): finished after a reload with the same passphrase. */
  pendingRegistration?: { username: string; userId: string };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseAppData(value: unknown): AppData {
  if (!isObject(value) || !isObject(value.names) || !isObject(value.outbox)) throw new TypeError('app data: expected {names, outbox}');
  for (const v of Object.values(value.names)) if (typeof v !== 'string') throw new TypeError('app data: names are strings');
  for (const list of Object.values(value.outbox)) {
    if (!Array.isArray(list) || !list.every((m) => isObject(m) && typeof m.messageId === 'string' && typeof m.text === 'string')) throw new TypeError('app data: bad outbox');
  }
  const pending = value.pendingRegistration;
  if (pending !== undefined && !(isObject(pending) && typeof pending.username === 'string' && typeof pending.userId === 'string')) throw new TypeError('app data: bad pendingRegistration');
  return value as unknown as AppData;
}

/** True when this browser holds the app's sealed record (it may name a registration to finish). */
export async function hasAppRecord(): Promise<boolean> {
  return (await idbStorage('app').read()) !== null;
}

export function keyStores(passphrase: string): { profile: SealedKeyStore; app: SealedJsonStore<AppData> } {
  return {
    profile: new SealedKeyStore(idbStorage('profile'), passphrase),
    app: new SealedJsonStore(idbStorage('app'), passphrase, { parse: parseAppData }),
  };
}

let held: Promise<boolean> | null = null;

/**
 * Takes this browser profile's device for this tab, for the tab's lifetime (Web Locks): false when
 * another tab holds it. Once held, later calls answer true at once.
 */
export function holdDevice(): Promise<boolean> {
  if (held) return held.then((ok) => ok || ((held = null), holdDevice()));
  held = new Promise<boolean>((resolve) => {
    void navigator.locks.request('bil-message-device', { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      // Kept until the tab goes away.
      return lock ? new Promise<void>(() => undefined) : undefined;
    });
  });
  return held;
}
