// A benchmark client process (forked by fanout.bench.ts): holds many
// WebSockets (delivery nodes or the raw ws server) and a NATS subscription,
// parses every frame as a client would, and measures send→deliver latency
// against the intended send time carried in the message (the envelope's
// ciphertext starts with `T<epoch ms>|`). Clocks: performance.timeOrigin +
// performance.now() in every process (the same system clock, sub-ms).
// Only aggregates travel back over IPC.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';

const now = () => performance.timeOrigin + performance.now();

interface Sock {
  ws: WebSocket;
  deviceId: string;
  tag: string;
  messages: number;
  syncedAt: number;
}

export type WorkerRequest =
  | {
      op: 'connect';
      id: number;
      url: string;
      tag: string;
      /** raw: no hello/sync (the raw ws baseline). */
      raw?: boolean;
      devices: Array<{ deviceId: string; token?: string; cursors?: Record<string, number> }>;
      /** Sockets opened at once (0: all at once). */
      concurrency: number;
      /** Reconnects of a socket that closed before `synced` (backoff 250 ms × 2^attempt, with jitter), as the SDK does. */
      retries?: number;
    }
  | { op: 'close'; id: number; tag: string }
  | { op: 'reset'; id: number }
  | { op: 'count'; id: number }
  | { op: 'stats'; id: number; tag?: string }
  | { op: 'nats'; id: number; url: string; subject: string }
  | { op: 'exit'; id: number };

export interface WorkerStats {
  /** Latencies (ms) of message frames at recipients (not the sender's own device). */
  lat: number[];
  /** Per `chat:seq`: the latest delivery (ms after the intended send time). */
  last: Record<string, number>;
  echoes: number;
  firstIntended: number;
  lastRecv: number;
  sockets: number;
  /** Storm: per socket messages received and the time `synced` came. */
  syncedMax: number;
  syncedCount: number;
  minMessages: number;
  maxMessages: number;
  totalMessages: number;
  closed: Record<string, number>;
}

const socks: Sock[] = [];
let stats = fresh();
let nc: NatsConnection | undefined;

function fresh() {
  return {
    lat: [] as number[],
    last: new Map<string, number>(),
    echoes: 0,
    firstIntended: Infinity,
    lastRecv: 0,
    closed: new Map<string, number>(),
  };
}

function record(key: string, intended: number, t: number): void {
  const l = t - intended;
  stats.lat.push(l);
  const prev = stats.last.get(key);
  if (prev === undefined || l > prev) stats.last.set(key, l);
  if (intended < stats.firstIntended) stats.firstIntended = intended;
  if (t > stats.lastRecv) stats.lastRecv = t;
}

/** What a client does with a frame: JSON.parse it, and the envelope. */
function onFrame(s: Sock, data: WebSocket.RawData): void {
  const t = now();
  const f = JSON.parse(String(data)) as { type: string; chat_id?: string; seq?: number; sender_device_id?: string; envelope?: string };
  if (f.type === 'synced') {
    s.syncedAt = t;
    return;
  }
  if (f.type !== 'message') return;
  s.messages++;
  if (s.syncedAt === 0) return; // history during catch-up
  if (f.sender_device_id === s.deviceId) {
    stats.echoes++;
    return;
  }
  const ct = (JSON.parse(f.envelope ?? '{}') as { ciphertext?: string }).ciphertext ?? '';
  if (ct[0] !== 'T') return;
  record(`${f.chat_id}:${f.seq}`, Number(ct.slice(1, ct.indexOf('|'))), t);
}

function open(url: string, tag: string, raw: boolean, d: { deviceId: string; token?: string; cursors?: Record<string, number> }): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: d.token ? { authorization: `Bearer ${d.token}` } : {}, perMessageDeflate: false });
    const s: Sock = { ws, deviceId: d.deviceId, tag, messages: 0, syncedAt: raw ? 1 : 0 };
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      if (ok) socks.push(s);
      resolve(ok);
    };
    const timer = setTimeout(() => {
      finish(false);
      ws.terminate();
    }, 60_000);
    ws.on('message', (data) => {
      if (!done) {
        // Before `synced` (or `hello` for a socket that only registers).
        const text = String(data);
        if (text.startsWith('{"type":"hello"')) {
          ws.send(JSON.stringify({ type: 'sync', cursors: d.cursors ?? {} }));
          return;
        }
        onFrame(s, data);
        if (s.syncedAt > 0) {
          clearTimeout(timer);
          finish(true);
        }
        return;
      }
      onFrame(s, data);
    });
    ws.on('open', () => {
      if (raw) {
        clearTimeout(timer);
        finish(true);
      }
    });
    ws.on('close', (code) => {
      stats.closed.set(String(code), (stats.closed.get(String(code)) ?? 0) + 1);
      clearTimeout(timer);
      finish(false);
    });
    ws.on('error', () => undefined);
  });
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'connect': {
      const started = now();
      let ok = 0;
      let failed = 0;
      let retried = 0;
      const limit = req.concurrency > 0 ? req.concurrency : req.devices.length;
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(limit, req.devices.length) }, async () => {
          while (next < req.devices.length) {
            const d = req.devices[next++]!;
            let done = false;
            for (let attempt = 0; !done && attempt <= (req.retries ?? 0); attempt++) {
              if (attempt > 0) {
                retried++;
                await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1) * (0.5 + Math.random())));
              }
              done = await open(req.url, req.tag, req.raw ?? false, d);
            }
            if (done) ok++;
            else failed++;
          }
        }),
      );
      return { ok, failed, retried, ms: now() - started };
    }
    case 'close': {
      const mine = socks.filter((s) => s.tag === req.tag);
      await Promise.all(
        mine.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.ws.readyState === WebSocket.CLOSED) return resolve();
              s.ws.once('close', () => resolve());
              s.ws.close();
              setTimeout(() => {
                s.ws.terminate();
                resolve();
              }, 3000).unref();
            }),
        ),
      );
      for (const s of mine) socks.splice(socks.indexOf(s), 1);
      return { closed: mine.length };
    }
    case 'reset':
      stats = fresh();
      for (const s of socks) s.messages = 0;
      return {};
    case 'count':
      return { n: stats.lat.length, echoes: stats.echoes };
    case 'stats': {
      const mine = socks.filter((s) => !req.tag || s.tag === req.tag);
      const msgs = mine.map((s) => s.messages);
      const out: WorkerStats = {
        lat: stats.lat,
        last: Object.fromEntries(stats.last),
        echoes: stats.echoes,
        firstIntended: stats.firstIntended,
        lastRecv: stats.lastRecv,
        sockets: mine.length,
        syncedMax: Math.max(0, ...mine.map((s) => s.syncedAt)),
        syncedCount: mine.filter((s) => s.syncedAt > 0).length,
        minMessages: msgs.length ? Math.min(...msgs) : 0,
        maxMessages: msgs.length ? Math.max(...msgs) : 0,
        totalMessages: msgs.reduce((a, b) => a + b, 0),
        closed: Object.fromEntries(stats.closed),
      };
      return out;
    }
    case 'nats': {
      const u = new URL(req.url);
      nc ??= await natsConnect({ servers: `${u.hostname}:${u.port || 4222}`, name: 'bench-client' });
      nc.subscribe(req.subject, {
        callback: (_err, msg) => {
          const t = now();
          const f = JSON.parse(msg.string()) as { seq: number; envelope: string };
          const ct = (JSON.parse(f.envelope) as { ciphertext: string }).ciphertext;
          record(`nats:${f.seq}`, Number(ct.slice(1, ct.indexOf('|'))), t);
        },
      });
      await nc.flush();
      return {};
    }
    case 'exit':
      for (const s of socks) s.ws.terminate();
      await nc?.close();
      setTimeout(() => process.exit(0), 50);
      return {};
  }
}

process.on('message', (req: WorkerRequest) => {
  handle(req).then(
    (result) => process.send?.({ id: req.id, result }),
    (err: unknown) => process.send?.({ id: req.id, error: String(err) }),
  );
});
// The parent going away ends this process.
process.on('disconnect', () => process.exit(0));
