// One HTTP call to the gateway: JSON in, JSON out, the API's error shape turned
// into BilApiError and transport failures into BilNetworkError. Uses only
// `fetch`, so it runs in browsers and in Node 20.
import { BilApiError, BilNetworkError } from './errors.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/**
 * What the last request says about reaching the service: `online` (an
 * answer), `unavailable` (the server answered 502/503/504: a backend or a
 * dependency is down), `offline` (no answer: network, DNS, timeout).
 */
export type ConnectionState = 'online' | 'unavailable' | 'offline';

export interface RequestOptions {
  body?: unknown;
  accessToken?: string;
}

export class Transport {
  readonly #baseUrl: string;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;

  /** The API's base URL, without a trailing slash. */
  get baseUrl(): string {
    return this.#baseUrl;
  }

  #state: ConnectionState = 'online';
  /** Told when a request's outcome changes the connection state (BilClient's `connection` event). */
  onState: ((state: ConnectionState, retryAfterMs?: number) => void) | undefined;

  /** The state the last request showed (`online` before any). */
  get state(): ConnectionState {
    return this.#state;
  }

  #observed(state: ConnectionState, retryAfterMs?: number): void {
    if (state === this.#state) return;
    this.#state = state;
    this.onState?.(state, retryAfterMs);
  }

  constructor(options: { baseUrl: string; fetch?: FetchLike; timeoutMs?: number }) {
    if (typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
      throw new TypeError('baseUrl: expected an http(s) URL such as "https://api.example.com"');
    }
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    // Browsers throw "Illegal invocation" when fetch is called detached from window.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Sends one request; resolves with the parsed body (undefined for 204). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    if (options.accessToken !== undefined) headers.authorization = `Bearer ${options.accessToken}`;

    let response: Response;
    try {
      response = await this.#fetch(`${this.#baseUrl}${path}`, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      this.#observed('offline');
      throw new BilNetworkError(timedOut ? `${method} ${path}: no answer in ${this.#timeoutMs} ms` : `${method} ${path}: request failed`, {
        code: timedOut ? 'timeout' : 'network',
        cause: err,
      });
    }

    const correlationId = response.headers.get('x-correlation-id') ?? undefined;
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    const outage = response.status === 502 || response.status === 503 || response.status === 504;
    this.#observed(outage ? 'unavailable' : 'online', outage ? retryAfterMs : undefined);
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      throw new BilNetworkError(`${method} ${path}: the answer was cut off`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }

    if (response.ok) {
      if (text !== '' && parsed === undefined) {
        throw new BilApiError({ status: response.status, code: 'invalid_response', message: 'the server sent a body that is not JSON', correlationId });
      }
      return parsed as T;
    }
    throw apiError(response, parsed, correlationId, retryAfterMs);
  }

  /**
   * Sends bytes (or nothing) and returns the Response for its body to be
   * streamed (attachments): an error answer becomes BilApiError, no answer
   * BilNetworkError, as for request(). `timeoutMs` 0: no overall deadline
   * (a long download); default the transport's.
   */
  async stream(method: string, path: string, options: { body?: Uint8Array; accessToken?: string; timeoutMs?: number } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/octet-stream, application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/octet-stream';
    if (options.accessToken !== undefined) headers.authorization = `Bearer ${options.accessToken}`;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let response: Response;
    try {
      response = await this.#fetch(`${this.#baseUrl}${path}`, {
        method,
        headers,
        ...(options.body !== undefined ? { body: options.body as Uint8Array<ArrayBuffer> } : {}),
        ...(timeoutMs > 0 ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
      });
    } catch (err) {
      this.#observed('offline');
      throw new BilNetworkError(`${method} ${path}: request failed`, { code: err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'network', cause: err });
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    const outage = response.status === 502 || response.status === 503 || response.status === 504;
    this.#observed(outage ? 'unavailable' : 'online', outage ? retryAfterMs : undefined);
    if (response.ok) return response;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await response.text());
    } catch {
      parsed = undefined;
    }
    throw apiError(response, parsed, response.headers.get('x-correlation-id') ?? undefined, retryAfterMs);
  }

  /**
   * A request to a presigned object-storage URL the gateway handed out
   * (attachments with `direct_transfer`): absolute, and never carrying this
   * client's credentials. An error answer becomes BilApiError with code
   * `storage_<status>`, no answer BilNetworkError.
   */
  async external(method: 'GET' | 'PUT', url: string, options: { body?: Uint8Array; timeoutMs?: number } = {}): Promise<Response> {
    if (!/^https?:\/\//.test(url)) throw new BilApiError({ status: 200, code: 'invalid_response', message: 'the server handed out a URL that is not http(s)' });
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method,
        ...(options.body !== undefined ? { body: options.body as Uint8Array<ArrayBuffer> } : {}),
        ...(timeoutMs > 0 ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
      });
    } catch (err) {
      throw new BilNetworkError(`${method} object storage: request failed`, { code: err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'network', cause: err });
    }
    if (response.ok) return response;
    await response.body?.cancel().catch(() => undefined);
    throw new BilApiError({ status: response.status, code: `storage_${response.status}`, message: `object storage answered ${response.status}` });
  }
}

/** The BilApiError of an error answer. */
function apiError(response: Response, parsed: unknown, correlationId: string | undefined, retryAfterMs: number | undefined): BilApiError {
  const error = errorOf(parsed);
  return new BilApiError({
    status: response.status,
    code: error?.code ?? `http_${response.status}`,
    message: error?.message ?? `HTTP ${response.status}`,
    details: error?.details ?? {},
    correlationId,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, in ms from now; undefined if absent or malformed. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The `{"error": {code, message, details}}` body of docs/api.md, if that is what arrived. */
function errorOf(body: unknown): { code: string; message: string; details: Record<string, unknown> } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const e = (body as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return undefined;
  const { code, message, details } = e as Record<string, unknown>;
  if (typeof code !== 'string') return undefined;
  return {
    code,
    message: typeof message === 'string' ? message : code,
    details: typeof details === 'object' && details !== null ? (details as Record<string, unknown>) : {},
  };
}
