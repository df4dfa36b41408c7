// Access and refresh tokens (docs/api.md "Authentication"). The session
// refreshes the access token shortly before it expires and, once, after a 401
// `token_expired`; only one refresh is ever in flight, because refresh tokens
// are single use and presenting a spent one ends the whole session (RFC 9700
// §4.14.2). Rotated tokens are persisted before anyone uses them.
import { BilApiError, BilStateError, SessionEndedError } from './errors.js';
import type { StoredTokens } from './key-store.js';
import type { Transport } from './transport.js';
import type { TokensJson } from './wire.js';

/** API codes after which the session can't be refreshed: sign in again. */
export const SESSION_ENDED_CODES: ReadonlySet<string> = new Set([
  'refresh_token_reused',
  'invalid_refresh_token',
  'session_expired',
  'token_revoked',
  'account_deleted',
]);

export interface SessionHooks {
  now(): number;
  /** Refresh this long before expiry at most (capped at half the token's lifetime). */
  refreshSkewMs: number;
  /** Writes the tokens (or their absence) to the key store. */
  persist(tokens: StoredTokens | null): Promise<void>;
  refreshed(tokens: StoredTokens): void;
  ended(code: string): void;
}

export function storedTokens(json: TokensJson, receivedAt: number): StoredTokens {
  const accessTokenExpiresAt = Date.parse(json.access_token_expires_at);
  const refreshTokenExpiresAt = Date.parse(json.refresh_token_expires_at);
  if (!json.access_token || !json.refresh_token || Number.isNaN(accessTokenExpiresAt) || Number.isNaN(refreshTokenExpiresAt)) {
    throw new BilApiError({ status: 200, code: 'invalid_response', message: 'the server sent malformed tokens' });
  }
  return {
    accessToken: json.access_token,
    accessTokenExpiresAt,
    refreshToken: json.refresh_token,
    refreshTokenExpiresAt,
    sessionId: json.session_id,
    receivedAt,
  };
}

export class Session {
  readonly #transport: Transport;
  readonly #hooks: SessionHooks;
  #tokens: StoredTokens | null;
  #refreshing: Promise<StoredTokens> | null = null;

  constructor(transport: Transport, hooks: SessionHooks, tokens: StoredTokens | null) {
    this.#transport = transport;
    this.#hooks = hooks;
    this.#tokens = tokens;
  }

  get tokens(): StoredTokens | null {
    return this.#tokens;
  }

  /** Adopts tokens from a sign-in (the caller persists them with the profile). */
  adopt(tokens: StoredTokens | null): void {
    this.#tokens = tokens;
  }

  /**
   * An authenticated call: refreshes first if the access token is about to
   * expire, and retries once after refreshing if the server says `token_expired`.
   */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const tokens = await this.#fresh();
    try {
      return await this.#send<T>(method, path, body, tokens);
    } catch (err) {
      if (!(err instanceof BilApiError && err.status === 401 && err.code === 'token_expired')) throw err;
      const renewed = await this.#refresh(tokens);
      return await this.#send<T>(method, path, body, renewed);
    }
  }

  /** A valid access token (refreshed first when due), e.g. for the live connection. */
  async accessToken(): Promise<string> {
    return (await this.#fresh()).accessToken;
  }

  /** Forces a refresh now (e.g. after the app wakes from sleep). */
  async refresh(): Promise<StoredTokens> {
    return this.#refresh(this.#require());
  }

  async #send<T>(method: string, path: string, body: unknown, tokens: StoredTokens): Promise<T> {
    try {
      return await this.#transport.request<T>(method, path, { body, accessToken: tokens.accessToken });
    } catch (err) {
      throw await this.#endIfFinal(err, tokens);
    }
  }

  #require(): StoredTokens {
    if (!this.#tokens) throw new BilStateError('not_signed_in', 'not signed in: call login() first');
    return this.#tokens;
  }

  #dueForRefresh(t: StoredTokens, now: number): boolean {
    const lifetime = Math.max(0, t.accessTokenExpiresAt - t.receivedAt);
    return now >= t.accessTokenExpiresAt - Math.min(this.#hooks.refreshSkewMs, lifetime / 2);
  }

  async #fresh(): Promise<StoredTokens> {
    const tokens = this.#require();
    const now = this.#hooks.now();
    if (!this.#dueForRefresh(tokens, now)) return tokens;
    try {
      return await this.#refresh(tokens);
    } catch (err) {
      // A refresh ahead of time that fails for a passing reason (network, 503)
      // must not fail a call the still-valid token can make.
      if (err instanceof SessionEndedError || now >= tokens.accessTokenExpiresAt) throw err;
      return tokens;
    }
  }

  /** Single flight: concurrent callers share one refresh; a caller holding stale tokens gets the current ones. */
  #refresh(stale: StoredTokens): Promise<StoredTokens> {
    if (this.#refreshing) return this.#refreshing;
    const current = this.#require();
    if (current !== stale) return Promise.resolve(current);
    this.#refreshing = this.#doRefresh(current).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  async #doRefresh(tokens: StoredTokens): Promise<StoredTokens> {
    let json: { tokens: TokensJson };
    try {
      json = await this.#transport.request<{ tokens: TokensJson }>('POST', '/v1/auth/refresh', {
        body: { refresh_token: tokens.refreshToken },
      });
    } catch (err) {
      throw await this.#endIfFinal(err, tokens);
    }
    const next = storedTokens(json.tokens, this.#hooks.now());
    if (this.#tokens !== tokens) return this.#require(); // signed out or in anew meanwhile
    this.#tokens = next;
    await this.#hooks.persist(next);
    this.#hooks.refreshed(next);
    return next;
  }

  /** Turns a session-ending API error into SessionEndedError, dropping the tokens it was about. */
  async #endIfFinal(err: unknown, tokens: StoredTokens): Promise<unknown> {
    if (!(err instanceof BilApiError) || !SESSION_ENDED_CODES.has(err.code)) return err;
    if (this.#tokens === tokens) {
      this.#tokens = null;
      await this.#hooks.persist(null);
      this.#hooks.ended(err.code);
    }
    return new SessionEndedError({
      status: err.status,
      code: err.code,
      message: err.message,
      details: err.details,
      ...(err.correlationId !== undefined ? { correlationId: err.correlationId } : {}),
    });
  }
}
