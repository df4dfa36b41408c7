// Test support: the backends every primitive test runs against, and a hook
// that installs one for a describe block and restores the previous after it.
import { afterAll, beforeAll } from 'vitest';
import { portableBackend, setCryptoBackend, type CryptoBackend } from '../backend.js';
import { nodeCryptoBackend } from '../node.js';

export const BACKENDS: readonly { readonly name: string; readonly backend: CryptoBackend }[] = [
  { name: 'portable', backend: portableBackend },
  { name: 'node', backend: nodeCryptoBackend },
];

/** Installs `backend` for the enclosing describe block. */
export function useBackend(backend: CryptoBackend): void {
  let previous: CryptoBackend | undefined;
  beforeAll(() => {
    previous = setCryptoBackend(backend);
  });
  afterAll(() => {
    if (previous) setCryptoBackend(previous);
  });
}

/** Runs `fn` with `backend` installed, then restores the previous backend. */
export async function withBackend<T>(backend: CryptoBackend, fn: () => Promise<T>): Promise<T> {
  const previous = setCryptoBackend(backend);
  try {
    return await fn();
  } finally {
    setCryptoBackend(previous);
  }
}
