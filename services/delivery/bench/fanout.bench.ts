// Fan-out benchmark: two delivery nodes (child processes, built dist/) on the
// local Redis and NATS, chat stood in by the test's in-process FakeChat that
// publishes MessagePosted to JetStream. Open loop: posts are scheduled at a
// fixed rate and latency is measured from the intended send time to the
// frame's arrival at the client. Prints, beside a raw NATS publish→subscribe
// baseline from the same run:
//   - 1:1: Alice on node A, Bob on node B: post→deliver p50/p99/p99.9;
//   - a 1,000-device group split over both nodes: per-frame p50/p99,
//     last-delivery p99 per message and deliveries per second.
// Run: npm run build -w @bil/delivery && npx tsx services/delivery/bench/fanout.bench.ts
import { performance } from 'node:perf_hooks';
import { createTestEnv } from '@bil/testkit';
import { FakeChat, TestClient, TokenIssuer, newUser, startNode, testNats, type Device } from '../test/support.js';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
};
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
const sleepUntil = async (t: number) => {
  const d = t - performance.now();
  if (d > 0) await new Promise((r) => setTimeout(r, d));
};

const env = await createTestEnv('deliverybench');
const nats = await testNats(env);
const issuer = new TokenIssuer();
const chat = new FakeChat(nats);
const backends = { identity: await issuer.start(), chat: await chat.start() };
const [a, b] = await Promise.all([
  startNode(env, 'bench-a', backends, { DELIVERY_MAX_BUFFERED_BYTES: String(8 * 1024 * 1024) }),
  startNode(env, 'bench-b', backends, { DELIVERY_MAX_BUFFERED_BYTES: String(8 * 1024 * 1024) }),
]);
const rows: string[][] = [];

try {
  // Baseline: raw NATS core publish → subscribe on this machine.
  {
    const subject = `${env.natsPrefix}bench.raw`;
    const lat: number[] = [];
    const sub = nats.nc.subscribe(subject, { callback: (_e, m) => {
        lat.push(performance.now() - Number(m.string()));
      },
    });
    const start = performance.now();
    for (let i = 0; i < 2000; i++) {
      await sleepUntil(start + i * 1);
      nats.nc.publish(subject, String(performance.now()));
    }
    await nats.nc.flush();
    await new Promise((r) => setTimeout(r, 200));
    sub.unsubscribe();
    rows.push(['raw NATS pub→sub (1 kHz)', fmt(pct(lat, 50)), fmt(pct(lat, 99)), fmt(pct(lat, 99.9)), '']);
  }

  // 1:1 across nodes.
  for (const rate of [100, 400]) {
    const [alice] = newUser();
    const [bob] = newUser();
    const chatId = await chat.createChat('personal', [alice!.userId, bob!.userId]);
    const cb = await TestClient.connect(b.url, await issuer.token(bob!));
    const ca = await TestClient.connect(a.url, await issuer.token(alice!));
    await Promise.all([ca, cb].map((c) => c.waitFor((f) => f.type === 'synced')));
    const intended = new Map<number, number>();
    const lat: number[] = [];
    cb.ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as { type: string; seq: number };
      if (f.type === 'message') lat.push(performance.now() - intended.get(f.seq)!);
    });
    const n = rate * 4;
    const start = performance.now() + 50;
    const posts: Promise<number>[] = [];
    for (let i = 1; i <= n; i++) {
      const t = start + ((i - 1) * 1000) / rate;
      await sleepUntil(t);
      intended.set(i, t);
      posts.push(chat.post(chatId, alice!, { wrappedKeys: { [bob!.deviceId]: 'k'.repeat(512) } }));
    }
    await Promise.all(posts);
    await cb.waitSeqs(chatId, n, 30_000);
    rows.push([`1:1 across nodes, ${rate} msg/s`, fmt(pct(lat, 50)), fmt(pct(lat, 99)), fmt(pct(lat, 99.9)), `${lat.length}/${n} delivered`]);
    ca.close();
    cb.close();
  }

  // A 1,000-device group, half on each node.
  {
    const members: Device[] = Array.from({ length: 1000 }, () => newUser()[0]!);
    const chatId = await chat.createChat('group', members.map((m) => m.userId));
    const clients: TestClient[] = [];
    for (let i = 0; i < members.length; i += 50) {
      clients.push(
        ...(await Promise.all(members.slice(i, i + 50).map(async (m, j) => TestClient.connect((i + j) % 2 ? b.url : a.url, await issuer.token(m))))),
      );
    }
    await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'synced', 30_000)));
    const intended = new Map<number, number>();
    const perFrame: number[] = [];
    const last = new Map<number, number>();
    let frames = 0;
    for (const c of clients) {
      c.frames.length = 0;
      c.ws.removeAllListeners('message');
      c.ws.on('message', (d) => {
        const s = String(d);
        if (!s.startsWith('{"type":"message"')) return;
        const seq = Number(/"seq":(\d+)/.exec(s)![1]);
        const l = performance.now() - intended.get(seq)!;
        perFrame.push(l);
        last.set(seq, Math.max(last.get(seq) ?? 0, l));
        frames++;
      });
    }
    const n = 50;
    const rate = 10;
    const start = performance.now() + 50;
    for (let i = 1; i <= n; i++) {
      const t = start + ((i - 1) * 1000) / rate;
      await sleepUntil(t);
      intended.set(i, t);
      void chat.post(chatId, members[i % members.length]!, { body: 'x'.repeat(1024) });
    }
    const deadline = performance.now() + 30_000;
    while (frames < n * members.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const elapsed = (performance.now() - start) / 1000;
    rows.push([
      `1,000-device group, ${rate} msg/s (per frame)`,
      fmt(pct(perFrame, 50)),
      fmt(pct(perFrame, 99)),
      fmt(pct(perFrame, 99.9)),
      `${frames}/${n * members.length} frames, ${Math.round(frames / elapsed)} frames/s`,
    ]);
    rows.push([`1,000-device group, last delivery per message`, fmt(pct([...last.values()], 50)), fmt(pct([...last.values()], 99)), '', '']);
    for (const c of clients) c.close();
  }
} finally {
  await Promise.allSettled([a.stop(), b.stop()]);
  chat.stop();
  issuer.stop();
  await nats.nc.close();
  await env.cleanup();
}

const header = ['scenario', 'p50', 'p99', 'p99.9', 'notes'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ');
process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`);
