// The SDK's one retry policy: the jittered, capped backoff shared by the live
// connection's reconnects and the retries through an outage, which calls
// are retried (no answer, 502/503/504) and how long, and what the transport
// tells the app about reaching the service.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BilApiError, BilNetworkError } from '../errors.js';
import { LiveConnection, MemoryCursorStore, type WebSocketLike } from '../live.js';
import { Transport, parseRetryAfter } from '../transport.js';
import { OUTAGE_BACKOFF, backoffDelay, isTransient, retryTransient } from './retry.js';

const unavailable = (retryAfterMs?: number) =>
  new BilApiError({ status: 503, code: 'service_unavailable', message: 'down', details: { retry_after_seconds: 2 }, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });

afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('doubles from the first delay, caps, and keeps half of each delay random', () => {
    const b = { initialMs: 500, maxMs: 3000 };
    expect([0, 1, 2, 3, 4, 10, 60].map((n) => backoffDelay(n, b, () => 0))).toEqual([250, 500, 1000, 1500, 1500, 1500, 1500]);
    expect([0, 1, 2, 3, 4, 10, 60].map((n) => backoffDelay(n, b, () => 1))).toEqual([500, 1000, 2000, 3000, 3000, 3000, 3000]);
    const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(8, b)));
    expect(spread.size).toBeGreaterThan(10); // clients that failed together come back spread out
  });

  it('waits at most 3 s by default', () => {
    expect(OUTAGE_BACKOFF.maxMs).toBeLessThanOrEqual(3000);
  });
});

describe('isTransient', () => {
  it('is true for no answer and for 502/503/504, false for any other answer', () => {
    expect(isTransient(new BilNetworkError('x'))).toBe(true);
    expect(isTransient(new BilNetworkError('x', { code: 'timeout' }))).toBe(true);
    for (const status of [502, 503, 504]) expect(isTransient(new BilApiError({ status, code: 'c', message: 'm' }))).toBe(true);
    for (const status of [400, 401, 404, 409, 429, 500]) expect(isTransient(new BilApiError({ status, code: 'c', message: 'm' }))).toBe(false);
    expect(isTransient(new TypeError('bug'))).toBe(false);
  });
});

describe('retryTransient', () => {
  it('sends the same call again through an outage until it is answered', async () => {
    vi.useFakeTimers();
    const outcomes: Array<() => unknown> = [
      () => {
        throw new BilNetworkError('refused');
      },
      () => {
        throw unavailable();
      },
      () => ({ seq: 7 }),
    ];
    const call = vi.fn(async () => outcomes.shift()!());
    const retries: Array<{ attempt: number; delayMs: number }> = [];
    const result = retryTransient(call, { random: () => 0, onRetry: ({ attempt, delayMs }) => retries.push({ attempt, delayMs }) });
    await vi.runAllTimersAsync();
    expect(await result).toEqual({ seq: 7 });
    expect(call).toHaveBeenCalledTimes(3);
    // The backoff (250 ms), then the server's Retry-After (2 s) as it is longer than the backoff (500 ms).
    expect(retries).toEqual([
      { attempt: 1, delayMs: 250 },
      { attempt: 2, delayMs: 2000 },
    ]);
  });

  it('passes any other failure on at once', async () => {
    const conflict = new BilApiError({ status: 409, code: 'mismatched_devices', message: 'm' });
    const call = vi.fn(async () => Promise.reject(conflict));
    await expect(retryTransient(call)).rejects.toBe(conflict);
    expect(call).toHaveBeenCalledTimes(1);
  });

  it('gives up with the last error once the budget is spent (0: never retries)', async () => {
    vi.useFakeTimers();
    const call = vi.fn(async () => Promise.reject(unavailable(1000)));
    const result = retryTransient(call, { budgetMs: 10_000, random: () => 1 }).catch((e: unknown) => e);
    await vi.runAllTimersAsync();
    expect(await result).toBeInstanceOf(BilApiError);
    // 1 s, 1 s (Retry-After over the 0.5 s and 1 s backoff), 2 s, 3 s, 3 s: 10 s spent; the next wait would pass the budget.
    expect(call).toHaveBeenCalledTimes(6);
    const once = vi.fn(async () => Promise.reject(unavailable()));
    await expect(retryTransient(once, { budgetMs: 0 })).rejects.toBeInstanceOf(BilApiError);
    expect(once).toHaveBeenCalledTimes(1);
  });
});

describe('live reconnect policy', () => {
  /** A server that refuses every connection until `up`, then accepts and syncs. */
  function server() {
    const state = { up: false, connects: 0, last: undefined as WebSocketLike | undefined };
    const factory = (): WebSocketLike => {
      state.connects++;
      const s: WebSocketLike & { readyState: number } = {
        readyState: 0,
        send: () => undefined,
        close: () => undefined,
        onopen: null,
        onmessage: null,
        onclose: null,
        onerror: null,
      };
      const up = state.up;
      state.last = s;
      queueMicrotask(() => {
        if (!up) return s.onclose?.({ code: 1006, reason: '' });
        s.readyState = 1;
        s.onmessage?.({ data: JSON.stringify({ type: 'hello', protocol: 1, expires_at: Date.now() + 600_000 }) });
        s.onmessage?.({ data: JSON.stringify({ type: 'synced', cursors: {} }) });
      });
      return s;
    };
    /** The open connection drops (a delivery node restarts, the network blips). */
    const drop = () => state.last?.onclose?.({ code: 1006, reason: '' });
    return { state, factory, drop };
  }

  function connection(factory: () => WebSocketLike, random: () => number = Math.random) {
    const live = new LiveConnection({ baseUrl: 'https://api.example.com', accessToken: async () => 't', cursors: new MemoryCursorStore(), decrypt: async () => 'x', webSocket: factory, random });
    const waits: number[] = [];
    const states: string[] = [];
    live.on('state', (s) => {
      states.push(s.state);
      if (s.state === 'waiting') waits.push(s.delayMs!);
    });
    return { live, waits, states };
  }

  it('never waits more than 3 s between attempts, however long the outage', async () => {
    vi.useFakeTimers();
    const { state, factory } = server();
    const { live, waits } = connection(factory, () => 1);
    live.start();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(waits.length).toBeGreaterThan(30);
    expect(Math.max(...waits)).toBeLessThanOrEqual(3000);
    // Back within one capped delay of the server's return.
    state.up = true;
    const back = Date.now();
    const states: string[] = [];
    live.on('state', (s) => states.push(s.state));
    while (!states.includes('live') && Date.now() - back < 10_000) await vi.advanceTimersByTimeAsync(10);
    expect(states).toContain('live');
    expect(Date.now() - back).toBeLessThanOrEqual(3010);
    live.close();
  });

  it('jitters each delay and starts again from the first delay once a connection is healthy', async () => {
    vi.useFakeTimers();
    const { state, factory, drop } = server();
    const randoms = [0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8, 0.4];
    let i = 0;
    const { live, waits } = connection(factory, () => randoms[i++ % randoms.length]!);
    live.start();
    await vi.advanceTimersByTimeAsync(15_000);
    const during = [...waits];
    expect(new Set(during.slice(4)).size).toBeGreaterThan(1); // capped, but not all equal
    state.up = true;
    await vi.advanceTimersByTimeAsync(3100);
    // Healthy (synced); it drops: the first delay again, not the capped one.
    state.up = false;
    waits.length = 0;
    drop();
    await vi.advanceTimersByTimeAsync(1);
    expect(waits[0]).toBeLessThanOrEqual(OUTAGE_BACKOFF.initialMs);
    live.close();
  });
});

describe('Transport connection state', () => {
  it('reports unavailable (with Retry-After), offline and online, once per change', async () => {
    const answers: Array<() => Response> = [
      () => new Response(JSON.stringify({ error: { code: 'service_unavailable', message: 'm', details: { retry_after_seconds: 2 } } }), { status: 503, headers: { 'retry-after': '2' } }),
      () => new Response(JSON.stringify({ error: { code: 'service_unavailable', message: 'm', details: {} } }), { status: 503, headers: { 'retry-after': '2' } }),
      () => {
        throw new TypeError('fetch failed');
      },
      () => new Response(JSON.stringify({ ok: true }), { status: 200 }),
      () => new Response(JSON.stringify({ error: { code: 'not_found', message: 'm', details: {} } }), { status: 404 }),
    ];
    const t = new Transport({ baseUrl: 'https://api.example.com', fetch: async () => answers.shift()!() });
    const seen: unknown[] = [];
    t.onState = (state, retryAfterMs) => seen.push(retryAfterMs === undefined ? state : [state, retryAfterMs]);
    const first = await t.request('GET', '/v1/me').catch((e: unknown) => e);
    expect(first).toMatchObject({ status: 503, retryAfterMs: 2000 });
    for (let n = 0; n < 4; n++) await t.request('GET', '/v1/me').catch(() => undefined);
    expect(seen).toEqual([['unavailable', 2000], 'offline', 'online']);
    expect(t.state).toBe('online');
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000 + 5000).toUTCString(), 10_000)).toBe(5000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
