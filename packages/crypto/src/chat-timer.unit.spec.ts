import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical-json.js';
import { parseChatTimer, signChatTimer, verifyChatTimer, MAX_DISAPPEARING_MS, MIN_DISAPPEARING_MS, type SignedChatTimer } from './chat-timer.js';
import { toBase64Url } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import { ed25519Sign } from './signature.js';
import { keyPool, makeUser, type TestUser } from './testing/fixtures.js';

const CHAT = '0193f9a8-0000-7000-8000-00000000c0de';
const DAY = 86_400_000;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
beforeAll(async () => {
  const pool = await keyPool();
  alice = await makeUser(1, pool.slice(0, 2));
  bob = await makeUser(2, pool.slice(2, 3));
  carol = await makeUser(3, pool.slice(3, 4));
});

const sign = (over: Partial<{ ms: number; version: number; user: TestUser }> = {}) =>
  signChatTimer({ chatId: CHAT, disappearingMs: over.ms ?? DAY, version: over.version ?? 1, device: (over.user ?? alice).devices[0]!.local, createdAt: 1764100000000 });
const verify = (statement: unknown, over: Partial<{ chatId: string; members: readonly [string, string]; user: TestUser }> = {}) =>
  verifyChatTimer({ statement, chatId: over.chatId ?? CHAT, members: over.members ?? [alice.userId, bob.userId], devices: (over.user ?? alice).devices.map((d) => d.verified) });

describe('chat timer statement (bil.chat-timer.v1)', () => {
  it('verifies under a verified device of the setting user and returns the payload', async () => {
    const p = await verify(sign());
    expect(p).toEqual({
      type: 'bil.chat-timer.v1',
      chat_id: CHAT,
      disappearing_ms: DAY,
      version: 1,
      set_by_user_id: alice.userId,
      set_by_device_id: alice.devices[0]!.local.deviceId,
      created_at: 1764100000000,
    });
    await expect(verify(sign({ ms: 0, version: 2, user: bob }), { user: bob })).resolves.toMatchObject({ disappearing_ms: 0, version: 2 });
    await expect(verify(JSON.parse(JSON.stringify(sign())))).resolves.toMatchObject({ version: 1 });
  });

  it('refuses another chat, a user who is not one of the two, a device not among the verified ones, and any edit', async () => {
    const t = sign();
    await expect(verify(t, { chatId: '0193f9a8-0000-7000-8000-00000000beef' })).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verify(sign({ user: carol }), { user: carol })).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verify(t, { user: bob })).rejects.toBeInstanceOf(CannotDecryptError);
    for (const edit of [{ disappearing_ms: 2 * DAY }, { version: 9 }, { set_by_user_id: bob.userId }, { set_by_device_id: alice.devices[1]!.local.deviceId }]) {
      await expect(verify({ ...t, payload: { ...t.payload, ...edit } })).rejects.toBeInstanceOf(CannotDecryptError);
    }
    const flipped = (t.signature[0] === 'A' ? 'B' : 'A') + t.signature.slice(1);
    await expect(verify({ ...t, signature: flipped })).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses devices that did not come from verifyDevice (a server-named key is not enough)', async () => {
    const t = sign();
    const plain = { ...alice.devices[0]!.verified };
    await expect(verifyChatTimer({ statement: t, chatId: CHAT, members: [alice.userId, bob.userId], devices: [plain] })).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses a statement for alice signed by bob', async () => {
    const forged = sign({ user: bob });
    const asAlice = { payload: { ...forged.payload, set_by_user_id: alice.userId }, signature: forged.signature };
    await expect(verify(asAlice)).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses extra or missing fields even when re-signed, out-of-range timers, and malformed documents', () => {
    const resign = (payload: object): SignedChatTimer =>
      ({ payload, signature: toBase64Url(ed25519Sign(alice.devices[0]!.local.keys.signing.secretKey, canonicalBytes(payload as never))) }) as SignedChatTimer;
    expect(() => parseChatTimer(resign({ ...sign().payload, note: 'x' }))).toThrow(CannotDecryptError);
    const { version: _v, ...missing } = sign().payload;
    expect(() => parseChatTimer(resign(missing))).toThrow(CannotDecryptError);
    for (const ms of [1, MIN_DISAPPEARING_MS - 1, MAX_DISAPPEARING_MS + 1, -1]) {
      expect(() => parseChatTimer(resign({ ...sign().payload, disappearing_ms: ms }))).toThrow(CannotDecryptError);
    }
    expect(() => parseChatTimer(resign({ ...sign().payload, version: 0 }))).toThrow(CannotDecryptError);
    expect(() => parseChatTimer(null)).toThrow(CannotDecryptError);
    expect(() => parseChatTimer('text')).toThrow(CannotDecryptError);
    expect(() => parseChatTimer({ ...sign(), signature: 'AA' })).toThrow(CannotDecryptError);
    expect(parseChatTimer(resign({ ...sign().payload, disappearing_ms: MAX_DISAPPEARING_MS })).disappearing_ms).toBe(MAX_DISAPPEARING_MS);
  });

  it('refuses bad input when signing', () => {
    const device = alice.devices[0]!.local;
    expect(() => signChatTimer({ chatId: 'nope', disappearingMs: DAY, version: 1, device, createdAt: 1 })).toThrow(TypeError);
    expect(() => signChatTimer({ chatId: CHAT, disappearingMs: 1000, version: 1, device, createdAt: 1 })).toThrow(RangeError);
    expect(() => signChatTimer({ chatId: CHAT, disappearingMs: DAY, version: 0, device, createdAt: 1 })).toThrow(RangeError);
    expect(() => signChatTimer({ chatId: CHAT, disappearingMs: DAY, version: 1, device, createdAt: -1 })).toThrow(TypeError);
  });
});
