// Catch-up against the real chat service (services/chat/dist/main.js): users
// and devices announced the way identity publishes them, messages sent over
// chat's gRPC API with structurally valid envelopes; two delivery nodes.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, eventually, uuidv7, type TestEnv } from '@bil/testkit';
import { ServiceAuth, callUnary, ensureStream, newHeaders, type Nats } from '@bil/runtime';
import { loadChatProto } from '@bil/proto';
import { TestClient, TokenIssuer, deliveryBuilt, deliveryMain, freePort, range, startNode, testNats, type DeliveryNode, type Device } from './support.js';

const chatMain = join(deliveryMain, '..', '..', '..', 'chat', 'dist', 'main.js');
const b64 = (n: number) => randomBytes(n).toString('base64url');


describe.skipIf(!deliveryBuilt || !existsSync(chatMain))('delivery with the real chat service', () => {
  let env: TestEnv;
  let nats: Nats;
  let issuer: TokenIssuer;
  let chatProcess: ChildProcess;
  let chatClient: InstanceType<ReturnType<typeof loadChatProto>['bil']['chat']['v1']['ChatService']>;
  let a: DeliveryNode;
  let b: DeliveryNode;
  const clients: TestClient[] = [];

  async function publishIdentity(event: string, payload: Record<string, unknown>) {
    const id = randomUUID();
    await nats.js.publish(`${env.natsPrefix}identity.v1.${event}`, JSON.stringify(payload), {
      msgID: id,
      headers: newHeaders({ 'Bil-Event-Id': id, 'Bil-Event-Type': event }),
    });
  }

  async function user(devices: number): Promise<Device[]> {
    const userId = randomUUID();
    const occurredAt = new Date().toISOString();
    await publishIdentity('user.registered', { userId, username: `u${userId.slice(0, 8)}`, displayName: '', occurredAt });
    const out: Device[] = [];
    for (let i = 0; i < devices; i++) {
      const deviceId = randomUUID();
      await publishIdentity('device.registered', {
        deviceId,
        userId,
        name: 'test',
        encryptionKey: b64(400),
        signingKey: b64(32),
        certificate: b64(64),
        certificateIssuedAt: '1',
        occurredAt,
      });
      out.push({ userId, deviceId, sessionId: randomUUID() });
    }
    return out;
  }

  const actor = (d: Device) => ({ userId: d.userId, deviceId: d.deviceId, sessionId: d.sessionId });

  async function send(chatId: string, sender: Device, recipients: Device[], ciphertextBytes = 272): Promise<number> {
    const messageId = uuidv7();
    const envelope = JSON.stringify({
      header: {
        v: 2,
        suite: 'aes-256-gcm',
        chat_id: chatId,
        message_id: messageId,
        sender_user_id: sender.userId,
        sender_device_id: sender.deviceId,
        scheme: 'direct',
        epoch: 0,
        // Header v2 (step 8): a direct message names the other user of the chat.
        epoch_hash: '',
        recipient_user_id: recipients.find((d) => d.userId !== sender.userId)!.userId,
        counter: 1,
        timestamp: Date.now(),
        nonce: b64(12),
        commitment: b64(32),
      },
      ciphertext: b64(ciphertextBytes),
      signature: b64(64),
    });
    const res = await callUnary<unknown, { seq: string }>(chatClient, chatClient.sendMessage as never, {
      actor: actor(sender),
      chatId,
      messageId,
      envelope,
      // Direct chats wrap to every device of both users, the sending device included (protocol.md).
      wrappedKeys: [sender, ...recipients].map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })),
    });
    return Number(res.seq);
  }

  beforeAll(async () => {
    env = await createTestEnv('deliverychat');
    nats = await testNats(env);
    await ensureStream(nats, 'identity');
    await ensureStream(nats, 'chat');
    issuer = new TokenIssuer();
    const identity = await issuer.start();
    const [grpcPort, metricsPort] = [await freePort(), await freePort()];
    chatProcess = spawn(process.execPath, [chatMain], {
      env: {
        PATH: process.env.PATH ?? '',
        ...env.serviceEnv,
        LOG_LEVEL: 'info',
        CHAT_GRPC_HOST: '127.0.0.1',
        CHAT_GRPC_PORT: String(grpcPort),
        CHAT_METRICS_PORT: String(metricsPort),
        CHAT_MIGRATE_ON_START: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    chatProcess.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    chatProcess.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(() => out.includes('chat listening'), 30_000, 100).catch(() => {
      throw new Error(`chat did not start:\n${out}`);
    });
    const proto = loadChatProto();
    chatClient = new proto.bil.chat.v1.ChatService(`127.0.0.1:${grpcPort}`, credentials.createInsecure(), ServiceAuth.fromEnv('gateway', env.serviceEnv).clientOptions('chat', {}));
    const backends = { identity, chat: `127.0.0.1:${grpcPort}` };
    [a, b] = await Promise.all([startNode(env, 'node-a', backends), startNode(env, 'node-b', backends)]);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.allSettled([a?.stop(), b?.stop()]);
    chatProcess?.kill('SIGTERM');
    await new Promise((r) => (chatProcess && chatProcess.exitCode === null ? chatProcess.once('exit', r) : r(null)));
    chatClient?.close();
    issuer?.stop();
    await nats?.nc.close();
    await env?.cleanup();
  });

  it('live across nodes, then an offline device catches up 100 messages from chat, synced, then live; a killed node loses nothing', async () => {
    const [alice] = await user(1);
    const [bob1, bob2] = await user(2);
    const created = await eventually(
      () =>
        callUnary<unknown, { chat: { chatId: string } }>(chatClient, chatClient.createPersonalChat as never, {
          actor: actor(alice!),
          peerUserId: bob1!.userId,
        }),
      15_000,
      200,
    );
    const chatId = created.chat.chatId;
    const toBob = [bob1!, bob2!];

    const cAlice = await TestClient.connect(a.url, await issuer.token(alice!));
    const cBob1 = await TestClient.connect(b.url, await issuer.token(bob1!));
    clients.push(cAlice, cBob1);
    await Promise.all([cAlice, cBob1].map((c) => c.waitFor((f) => f.type === 'synced')));
    await send(chatId, alice!, toBob);
    const live = await cBob1.waitFor((f) => f.type === 'message' && f.seq === 1);
    expect(live.wrapped_key).toEqual(expect.any(String));
    // The sending device gets its own message with its own key copy (chat wraps for it too; docs/ws-protocol.md).
    expect((await cAlice.waitFor((f) => f.type === 'message' && f.seq === 1)).wrapped_key).toEqual(expect.any(String));
    await send(chatId, bob1!, [alice!, bob2!]);
    await cAlice.waitFor((f) => f.type === 'message' && f.seq === 2);

    // Bob's second device was offline for 100 messages.
    for (let i = 0; i < 100; i++) await send(chatId, alice!, toBob);
    const cBob2 = await TestClient.connect(a.url, await issuer.token(bob2!), { sync: { [chatId]: 2 } });
    clients.push(cBob2);
    const synced = await cBob2.waitFor((f) => f.type === 'synced', 20_000);
    expect(cBob2.seqs(chatId)).toEqual(range(3, 102));
    expect(synced.cursors).toMatchObject({ [chatId]: 102 });
    expect(cBob2.frames.filter((f) => f.type === 'message').every((f) => typeof f.wrapped_key === 'string')).toBe(true);
    await send(chatId, alice!, toBob);
    expect(await cBob2.waitSeqs(chatId, 101)).toEqual(range(3, 103));

    // Kill node A (holding Bob's second device) while Alice keeps sending.
    const sending = (async () => {
      for (let i = 0; i < 60; i++) await send(chatId, alice!, toBob);
    })();
    await cBob2.waitSeqs(chatId, 115);
    a.kill();
    await cBob2.closed;
    const got = cBob2.seqs(chatId);
    const resumed = await TestClient.connect(b.url, await issuer.token(bob2!), { sync: { [chatId]: got.at(-1)! } });
    clients.push(resumed);
    await sending;
    const all = [...got, ...(await resumed.waitSeqs(chatId, 163 - got.at(-1)!, 20_000))];
    expect(all).toEqual(range(3, 163));
    expect(await cBob1.waitSeqs(chatId, 163, 20_000)).toEqual(range(1, 163));
  }, 90_000);

  it('catch-up of 50 messages of ~190 KB (over the 8 MiB gRPC reply limit at 200 a page) arrives whole, then synced (issue #14 item 1)', async () => {
    const [alice] = await user(1);
    const [bob] = await user(1);
    const created = await eventually(
      () =>
        callUnary<unknown, { chat: { chatId: string } }>(chatClient, chatClient.createPersonalChat as never, {
          actor: actor(alice!),
          peerUserId: bob!.userId,
        }),
      15_000,
      200,
    );
    const chatId = created.chat.chatId;
    // 190,000 random bytes = 253,334 base64url characters: just under the API's 256 KiB ciphertext limit.
    for (let i = 0; i < 50; i++) await send(chatId, alice!, [bob!], 190_000);
    const cBob = await TestClient.connect(b.url, await issuer.token(bob!), { sync: {} });
    clients.push(cBob);
    // Before the fix every sync closed 4013 backend_unavailable here, forever.
    const synced = await Promise.race([
      cBob.waitFor((f) => f.type === 'synced', 60_000),
      cBob.closed.then((c) => ({ type: `closed ${c.code} ${c.reason}` }) as Record<string, unknown> & { type: string }),
    ]);
    expect(synced.type).toBe('synced');
    expect(cBob.seqs(chatId)).toEqual(range(1, 50));
    expect(synced.cursors).toMatchObject({ [chatId]: 50 });
  }, 120_000);

  // Node A is killed by the first test: the tests below use node B.
  async function personalChat(x: Device, y: Device): Promise<string> {
    const created = await eventually(
      () => callUnary<unknown, { chat: { chatId: string } }>(chatClient, chatClient.createPersonalChat as never, { actor: actor(x), peerUserId: y.userId }),
      15_000,
      200,
    );
    return created.chat.chatId;
  }

  it('a chat created while both are connected counts at once: presence of the other member is allowed before any message', async () => {
    const [alice] = await user(1);
    const [bob] = await user(1);
    const cAlice = await TestClient.connect(b.url, await issuer.token(alice!));
    const cBob = await TestClient.connect(b.url, await issuer.token(bob!));
    clients.push(cAlice, cBob);
    await Promise.all([cAlice.waitFor((f) => f.type === 'synced'), cBob.waitFor((f) => f.type === 'synced')]);
    const chatId = await personalChat(alice!, bob!);
    await cBob.waitFor((f) => f.type === 'chat_event' && f.chat_id === chatId);
    cBob.send({ type: 'presence_subscribe', user_ids: [alice!.userId], id: 'p' });
    expect(await cBob.waitFor((f) => (f.type === 'presence' && f.user_id === alice!.userId) || (f.type === 'error' && f.id === 'p'))).toMatchObject({ type: 'presence', online: true });
  }, 60_000);

  it('every frame naming a chat checks membership: typing, read, ack, sync cursors and presence of a foreign chat (issue #14 item 4)', async () => {
    const [alice] = await user(1);
    const [bob] = await user(1);
    const [mallory] = await user(1);
    const chatId = await personalChat(alice!, bob!);
    await send(chatId, alice!, [bob!]);
    const cBob = await TestClient.connect(b.url, await issuer.token(bob!));
    clients.push(cBob);
    await cBob.waitFor((f) => f.type === 'synced');
    // Mallory names Alice and Bob's chat in her cursors: nothing of it is sent, synced does not list it.
    const cMal = await TestClient.connect(b.url, await issuer.token(mallory!), { sync: { [chatId]: 0 } });
    clients.push(cMal);
    const synced = await cMal.waitFor((f) => f.type === 'synced');
    expect(synced.cursors).toEqual({});
    expect(cMal.seqs(chatId)).toEqual([]);
    for (const [type, extra] of [
      ['typing', { active: true }],
      ['read', { seq: 1 }],
      ['ack', { seq: 1 }],
    ] as const) {
      cMal.send({ type, chat_id: chatId, id: type, ...extra });
      expect(await cMal.waitFor((f) => f.type === 'error' && f.id === type)).toMatchObject({ code: 'chat_not_found' });
    }
    cMal.send({ type: 'presence_subscribe', user_ids: [alice!.userId, bob!.userId], id: 'p' });
    expect(await cMal.waitFor((f) => f.type === 'error' && f.id === 'p')).toMatchObject({ code: 'presence_not_allowed' });
    await new Promise((r) => setTimeout(r, 300));
    expect(cBob.frames.filter((f) => f.type === 'typing' || f.type === 'receipt' || f.type === 'presence')).toEqual([]);
  }, 60_000);

  it('per-socket rate limits: a typing flood reaches the peer only up to the burst, then rate_limited, then 4010 (issue #14 item 4)', async () => {
    const [alice] = await user(1);
    const [bob] = await user(1);
    const chatId = await personalChat(alice!, bob!);
    const cAlice = await TestClient.connect(b.url, await issuer.token(alice!));
    const cBob = await TestClient.connect(b.url, await issuer.token(bob!));
    clients.push(cAlice, cBob);
    await Promise.all([cAlice, cBob].map((c) => c.waitFor((f) => f.type === 'synced')));
    for (let i = 0; i < 40; i++) cBob.send({ type: 'typing', chat_id: chatId, active: i % 2 === 0, id: `t${i}` });
    const limited = await cBob.waitFor((f) => f.type === 'error' && f.code === 'rate_limited');
    expect(limited.details).toMatchObject({ retry_after_ms: expect.any(Number) });
    // 40 frames, a burst of 10: more than 20 refused, so the socket is closed as too_many_errors.
    expect((await cBob.closed).code).toBe(4010);
    // Operators see them as rate-limited, apart from malformed frames.
    const counter = (text: string, name: string) => Number(text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))?.split(' ').at(-1) ?? NaN);
    const metrics = await b.metrics();
    expect(counter(metrics, 'bil_delivery_rate_limited_frames_total')).toBeGreaterThan(20);
    expect(counter(metrics, 'bil_delivery_bad_frames_total')).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const relayed = cAlice.frames.filter((f) => f.type === 'typing').length;
    expect(relayed).toBeGreaterThan(0);
    expect(relayed).toBeLessThanOrEqual(12);
    // Acks of random chat ids (each a chat lookup) are capped the same way.
    const cBob2 = await TestClient.connect(b.url, await issuer.token(bob!));
    clients.push(cBob2);
    await cBob2.waitFor((f) => f.type === 'synced');
    for (let i = 0; i < 600; i++) cBob2.send({ type: 'ack', chat_id: randomUUID(), seq: 1 });
    expect((await cBob2.closed).code).toBe(4010);
    expect(cBob2.frames.filter((f) => f.type === 'error' && f.code === 'chat_not_found').length).toBeLessThanOrEqual(500);
  }, 60_000);
});
