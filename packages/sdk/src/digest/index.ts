// Digests (docs/sdk.md "Digests"): the engine, its public shapes and API.
import type { UnreadOverview } from '../chats.js';
import type { DigestMode, DigestOutcome, DigestPolicy, PendingDigest, DigestOptions } from './types.js';

export { DigestEngine, DEFAULT_MIN_UNREAD, type DigestDeps } from './engine.js';
export * from './types.js';

/** `client.digests`. */
export interface DigestsApi {
  /** Whether a server or model digest of the chat may be made (signed group setting, the service's switch), the client's threshold, and who is left out (verified consents, pinned). */
  policy(chatId: string): Promise<DigestPolicy>;
  /** The digest service's chat-wide switch for this user (off: the service refuses digests of the chat for every member). */
  setPolicy(chatId: string, enabled: boolean): Promise<{ enabled: boolean }>;
  /** Chats of an unread overview a digest can be offered for (`on` default `server`). */
  offered(overview: UnreadOverview, options?: { on?: DigestMode; minUnread?: number }): Promise<string[]>;
  /** Signs this user's consent for a chat and stores it at the service; `false`: leave my messages out of every member's server and model digests. */
  setConsent(chatId: string, include: boolean): Promise<{ include: boolean; version: number }>;
  /** What leaves the device in a mode, and who can read it (for `model`, naming the endpoint). */
  disclosure(on: DigestMode, model?: { baseURL?: string }): string;
  /** Picks up a server digest that timed out, from `DigestFailedError.pending`. */
  resume(pending: PendingDigest, options?: Pick<DigestOptions, 'timeoutMs' | 'pollMs'>): Promise<DigestOutcome[]>;
}
