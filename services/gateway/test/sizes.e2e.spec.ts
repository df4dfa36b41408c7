// Issue #14 items 1-2 through the public API: history of a chat full of
// near-limit messages. The built identity and chat services run as child
// processes; the gateway runs in-process against them. Before the fix a
// history page of 200 such messages passed the gRPC reply limit and came back
// 429 rate_limited "Received message larger than max (... vs 16777216)".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { ServiceAuth } from '@bil/runtime';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { createChatClient, type ChatApi } from '../src/chat-client.js';
import { createIdentityClient, type IdentityApi } from '../src/identity-client.js';
import {
  chatMain,
  deviceRegistration,
  ed25519,
  identityMain,
  randomUsername,
  startChat,
  startIdentity,
  type ChatProcess,
  type IdentityProcess,
  RPC_DEADLINE_MS,
} from './fixtures.js';
import { startTestGateway, type TestGateway } from './gateway.js';

const PASSWORD = 'correct horse battery staple';
const b64 = (n: number) => randomBytes(n).toString('base64url');

interface Person {
  userId: string;
  deviceId: string;
  token: string;
}

describe.skipIf(!existsSync(identityMain) || !existsSync(chatMain))('history sized by bytes (e2e)', () => {
  let env: TestEnv;
  let identity: IdentityProcess;
  let chatProc: ChatProcess;
  let idClient: IdentityApi;
  let chat: ChatApi;
  let gw: TestGateway;
  let http: TestGateway['http'];

  async function person(prefix: string): Promise<Person> {
    const username = randomUsername(prefix);
    const reg = await http('POST', '/v1/auth/register', { body: { username, password: PASSWORD } });
    expect(reg.status, reg.text).toBe(201);
    const userId = reg.body.user.user_id;
    const dev = await http('POST', '/v1/auth/devices', { body: deviceRegistration({ username, password: PASSWORD, userId, identity: ed25519() }) });
    expect(dev.status, dev.text).toBe(201);
    return { userId, deviceId: dev.body.device.device_id, token: dev.body.tokens.access_token };
  }

  function bigMessage(from: Person, to: Person, chatId: string) {
    const messageId = randomUUID();
    return {
      message_id: messageId,
      envelope: {
        header: {
          v: 2,
          suite: 'aes-256-gcm',
          chat_id: chatId,
          message_id: messageId,
          sender_user_id: from.userId,
          sender_device_id: from.deviceId,
          scheme: 'direct',
          epoch: 0,
          epoch_hash: '',
          recipient_user_id: to.userId,
          counter: 1,
          timestamp: Date.now(),
          nonce: b64(12),
          commitment: b64(32),
        },
        // 196,000 random bytes = 261,334 base64url characters: just under the 256 KiB ciphertext limit.
        ciphertext: b64(196_000),
        signature: b64(64),
      },
      wrapped_keys: [from, to].map((p) => ({ device_id: p.deviceId, wrapped_key: b64(384) })),
    };
  }

  beforeAll(async () => {
    env = await createTestEnv('gwsizes');
    identity = await startIdentity({ ...env.serviceEnv, LOG_LEVEL: 'info', IDENTITY_SCRYPT_LOG2N: '14' });
    chatProc = await startChat(env.serviceEnv);
    idClient = createIdentityClient(identity.grpcUrl, RPC_DEADLINE_MS, ServiceAuth.fromEnv('gateway', env.serviceEnv));
    chat = createChatClient(chatProc.grpcUrl, RPC_DEADLINE_MS, ServiceAuth.fromEnv('gateway', env.serviceEnv));
    gw = await startTestGateway(env, { name: 'gateway-sizes-e2e', identity: idClient, chat: chat });
    http = gw.http;
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    chat?.close();
    idClient?.close();
    await chatProc?.stop();
    await identity?.stop();
    await env?.cleanup();
  });

  it('a history page of 200 near-limit messages is cut by bytes, never 429 or internal text; paging gets them all (issue #14 items 1, 2)', async () => {
    const [alice, bob] = await Promise.all([person('alice'), person('bob')]);
    const created = await http('POST', '/v1/chats', { token: alice.token, body: { type: 'personal', peer_user_id: bob.userId } });
    expect(created.status, created.text).toBe(201);
    const chatId: string = created.body.chat.chat_id;
    // 85 x ~262 KB = ~22 MB: past the gateway's 16 MiB gRPC reply limit at one page of 200.
    const N = 85;
    for (let i = 0; i < N; i++) {
      let sent = await http('POST', `/v1/chats/${chatId}/messages`, { token: alice.token, body: bigMessage(alice, bob, chatId) });
      for (let t = 0; sent.body?.error?.code === 'mismatched_devices' && t < 40; t++) {
        await new Promise((r) => setTimeout(r, 250)); // chat learns of devices from identity's events
        sent = await http('POST', `/v1/chats/${chatId}/messages`, { token: alice.token, body: bigMessage(alice, bob, chatId) });
      }
      expect(sent.status, sent.text).toBe(201);
    }

    // Newest page (backwards) and forwards paging: each page fits the byte budget, has_more until the end.
    const newest = await http('GET', `/v1/chats/${chatId}/messages?limit=200`, { token: bob.token });
    expect(newest.status, newest.text.slice(0, 300)).toBe(200);
    expect(newest.text).not.toMatch(/larger than max/);
    expect(newest.body.messages.length).toBeGreaterThan(0);
    expect(newest.body.messages.length).toBeLessThan(N);
    expect(newest.body.has_more).toBe(true);
    expect(newest.body.messages.at(-1).seq).toBe(N);
    expect(newest.text.length).toBeLessThan(5 * 1024 * 1024);

    const seen: number[] = [];
    let after = 0;
    for (let pages = 0; pages < 20; pages++) {
      const page = await http('GET', `/v1/chats/${chatId}/messages?after=${after}&limit=200`, { token: bob.token });
      expect(page.status, page.text.slice(0, 300)).toBe(200);
      expect(page.text.length).toBeLessThan(5 * 1024 * 1024);
      for (const m of page.body.messages) seen.push(m.seq);
      if (!page.body.has_more) break;
      after = page.body.messages.at(-1).seq;
    }
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => i + 1));

    // GetUnread's envelopes share one byte budget per answer: the newest that fit, counts exact.
    const unread = await http('GET', '/v1/unread?max_envelopes_per_chat=50', { token: bob.token });
    expect(unread.status, unread.text.slice(0, 300)).toBe(200);
    expect(unread.text.length).toBeLessThan(5 * 1024 * 1024);
    const mine = unread.body.chats.find((c: { chat_id: string }) => c.chat_id === chatId);
    expect(mine.unread_count).toBe(N);
    expect(mine.newest_unread.length).toBeGreaterThan(0);
    expect(mine.newest_unread.length).toBeLessThan(50);
    expect(mine.newest_unread.at(-1).seq).toBe(N);
  }, 240_000);
});
