// Issue 14, hostile clients at a delivery node (items 8 and 9): a typing
// flood, slowloris and too many connections from one address, and Node's own
// refusals (431, malformed HTTP) in the API's error shape. One real node
// (child process) on real Redis and NATS, identity and chat stood in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import type { Nats } from '@bil/runtime';
import { FakeChat, TestClient, TokenIssuer, deliveryBuilt, newUser, startNode, testNats, type DeliveryNode } from './support.js';

const CAP = 30;

describe.skipIf(!deliveryBuilt)('hostile clients at a delivery node (issue 14)', () => {
  let env: TestEnv;
  let nats: Nats;
  let issuer: TokenIssuer;
  let chat: FakeChat;
  let node: DeliveryNode;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    env = await createTestEnv('delivery-edge');
    nats = await testNats(env);
    issuer = new TokenIssuer();
    chat = new FakeChat(nats);
    const backends = { identity: await issuer.start(), chat: await chat.start() };
    node = await startNode(env, 'node-edge', backends, {
      DELIVERY_HEADERS_TIMEOUT_MS: '1000',
      DELIVERY_MAX_CONNECTIONS_PER_ADDRESS: String(CAP),
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await node?.stop();
    chat?.stop();
    issuer?.stop();
    await nats?.nc.close();
    await env?.cleanup();
  });

  function raw(bytes: string, waitMs = 3000): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port: node.port });
      let out = '';
      const done = () => {
        clearTimeout(timer);
        s.destroy();
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
        const text = out.slice(out.indexOf('\r\n\r\n') + 4);
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON: the assertion shows it */
        }
        resolve({ status, body });
      };
      const timer = setTimeout(done, waitMs);
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('close', done);
      s.on('error', done);
      s.write(bytes);
    });
  }

  it("item 9: Node's 431 and 400 carry the API's error body", async () => {
    const big = await raw(`GET /v1/ws HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big.status).toBe(431);
    expect(big.body).toEqual({ error: { code: 'headers_too_large', message: expect.any(String), details: {} } });
    const bad = await raw('BLAH\r\n\r\n');
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: { code: 'invalid_request', message: expect.any(String), details: {} } });
  });

  it('item 8: slowloris upgrades are cut with 408, the per-address cap holds, a normal socket still opens', async () => {
    const sockets: Socket[] = [];
    const outputs: string[] = [];
    let closed = 0;
    for (let i = 0; i < CAP + 10; i++) {
      const s = connect({ host: '127.0.0.1', port: node.port, localAddress: '127.0.0.2' });
      const k = i;
      outputs[k] = '';
      s.on('data', (d) => (outputs[k] += d.toString('latin1')));
      s.on('close', () => closed++);
      s.on('error', () => undefined);
      s.write('GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Slow: ');
      sockets.push(s);
    }
    const drip = setInterval(() => sockets.forEach((s) => s.writable && s.write('a')), 200);
    try {
      const [carol] = newUser();
      const c = await TestClient.connect(node.url, await issuer.token(carol!));
      clients.push(c);
      await c.waitFor((f) => f.type === 'synced');
      await new Promise((r) => setTimeout(r, 3500));
      expect(closed).toBe(CAP + 10);
      expect(outputs.filter((o) => o.startsWith('HTTP/1.1 503')).length).toBe(10);
      const timedOut = outputs.filter((o) => o.startsWith('HTTP/1.1 408'));
      expect(timedOut.length).toBe(CAP);
      expect(JSON.parse(timedOut[0]!.slice(timedOut[0]!.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'request_timeout' } });
      c.send({ type: 'ping', id: 'still' });
      await c.waitFor((f) => f.type === 'pong' && f.id === 'still');
    } finally {
      clearInterval(drip);
      sockets.forEach((s) => s.destroy());
    }
  }, 20_000);
});
