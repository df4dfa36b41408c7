// One HTTP call to the gateway: JSON in, JSON out, the API's error shape turned
// into BilApiError and transport failures into BilNetworkError. Uses only
// `fetch`, so it runs in browsers and in Node 20.
import { BilApiError, BilNetworkError } from './errors.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

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
      throw new BilNetworkError(timedOut ? `${method} ${path}: no answer in ${this.#timeoutMs} ms` : `${method} ${path}: request failed`, {
        code: timedOut ? 'timeout' : 'network',
        cause: err,
      });
    }

    const correlationId = response.headers.get('x-correlation-id') ?? undefined;
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
    const error = errorOf(parsed);
    throw new BilApiError({
      status: response.status,
      code: error?.code ?? `http_${response.status}`,
      message: error?.message ?? `HTTP ${response.status}`,
      details: error?.details ?? {},
      correlationId,
    });
  }
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
