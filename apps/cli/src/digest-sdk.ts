// TEMPORARY, until the sdk branch (step 9) is merged: the SDK's digest
// surface as docs/step 9's contract names it, so the CLI compiles against it
// now. Replaced by the SDK's own types after the merge.
import type { BilClient, DigestOutcome } from '@bil/sdk';

export type DigestOn = 'server' | 'device' | 'model';

export interface Disclosure {
  readonly chatId?: string;
  readonly on: DigestOn;
  readonly text: string;
}

export interface DigestCallOptions {
  on?: DigestOn;
  model?: { apiKey: string; baseURL?: string; model?: string };
  minUnread?: number;
  confirm?: (d: Disclosure) => boolean | Promise<boolean>;
  names?: Record<string, string>;
  timeoutMs?: number;
  serviceIdentityKey?: string;
}

export interface DigestSdk {
  digest(chatIds: readonly string[], options: DigestCallOptions): Promise<DigestOutcome[]>;
  readonly digests: {
    offered(overview: unknown, options?: { minUnread?: number }): Promise<string[]>;
    setConsent(chatId: string, include: boolean): Promise<unknown>;
    resume(pending: unknown, options?: { timeoutMs?: number; serviceIdentityKey?: string; confirm?: DigestCallOptions['confirm'] }): Promise<DigestOutcome[]>;
    disclosure(on: DigestOn): string;
  };
  readonly chats: { setDigests(chatId: string, allowed: boolean): Promise<unknown> };
}

export const sdkOf = (client: BilClient): DigestSdk => client as unknown as DigestSdk;
