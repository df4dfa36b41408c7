import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical-json.js';
import { toBase64Url } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import { parseMessageDelete, signMessageDelete, verifyMessageDelete, type SignedMessageDelete } from './message-delete.js';
import { ed25519Sign } from './signature.js';
import { keyPool, makeUser, type TestUser } from './testing/fixtures.js';

const CHAT = '0193f9a8-0000-7000-8000-00000000c0de';
const MESSAGE = '0193f9a8-0001-7000-8000-00000000abcd';
let alice: TestUser;
let bob: TestUser;
beforeAll(async () => {
  const pool = await keyPool();
  alice = await makeUser(1, pool.slice(0, 1));
  bob = await makeUser(2, pool.slice(1, 2));
});

const sign = (messageId = MESSAGE) => signMessageDelete({ chatId: CHAT, messageId, device: alice.devices[0]!.local, deletedAt: 1764100000000 });
const aliceKey = () => toBase64Url(alice.devices[0]!.local.keys.signing.publicKey);
const verify = (tombstone: unknown, over: Partial<{ chatId: string; messageId: string; senderUserId: string; signingKey: string | Uint8Array }> = {}) =>
  verifyMessageDelete({ tombstone, chatId: CHAT, messageId: MESSAGE, senderUserId: alice.userId, signingKey: aliceKey(), ...over });

describe('message tombstone (bil.message-delete.v1)', () => {
  it('verifies under the signing device key and returns the payload', async () => {
    const p = await verify(sign());
    expect(p).toEqual({
      type: 'bil.message-delete.v1',
      chat_id: CHAT,
      message_id: MESSAGE,
      sender_user_id: alice.userId,
      sender_device_id: alice.devices[0]!.local.deviceId,
      deleted_at: 1764100000000,
    });
    expect(parseMessageDelete(sign()).message_id).toBe(MESSAGE);
  });

  it('survives a JSON round trip (as the server stores and returns it)', async () => {
    await expect(verify(JSON.parse(JSON.stringify(sign())))).resolves.toMatchObject({ message_id: MESSAGE });
  });

  it('refuses another chat, another message, another sender, another key, and any edit', async () => {
    const t = sign();
    await expect(verify(t, { chatId: '0193f9a8-0000-7000-8000-00000000beef' })).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verify(t, { messageId: '0193f9a8-0001-7000-8000-00000000beef' })).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verify(t, { senderUserId: bob.userId })).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verify(t, { signingKey: bob.devices[0]!.local.keys.signing.publicKey })).rejects.toBeInstanceOf(CannotDecryptError);
    for (const edit of [{ deleted_at: 1 }, { message_id: '0193f9a8-0001-7000-8000-00000000beef' }, { sender_user_id: bob.userId }]) {
      await expect(verify({ ...t, payload: { ...t.payload, ...edit } })).rejects.toBeInstanceOf(CannotDecryptError);
    }
    const sig = t.signature;
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    await expect(verify({ ...t, signature: flipped })).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses a tombstone signed by someone else for the sender (another user re-signing)', async () => {
    const forged = signMessageDelete({ chatId: CHAT, messageId: MESSAGE, device: bob.devices[0]!.local, deletedAt: 1 });
    await expect(verify(forged)).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verify(forged, { signingKey: bob.devices[0]!.local.keys.signing.publicKey })).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses extra or missing fields even when re-signed, and malformed documents', () => {
    const extra = { ...sign().payload, note: 'x' };
    const resigned = { payload: extra, signature: toBase64Url(ed25519Sign(alice.devices[0]!.local.keys.signing.secretKey, canonicalBytes(extra as never))) } as unknown as SignedMessageDelete;
    expect(() => parseMessageDelete(resigned)).toThrow(CannotDecryptError);
    const { deleted_at: _d, ...missing } = sign().payload;
    expect(() => parseMessageDelete({ payload: missing, signature: sign().signature })).toThrow(CannotDecryptError);
    expect(() => parseMessageDelete(null)).toThrow(CannotDecryptError);
    expect(() => parseMessageDelete('text')).toThrow(CannotDecryptError);
    expect(() => parseMessageDelete({ ...sign(), signature: 'AA' })).toThrow(CannotDecryptError);
  });

  it('refuses bad input when signing', () => {
    expect(() => signMessageDelete({ chatId: 'nope', messageId: MESSAGE, device: alice.devices[0]!.local, deletedAt: 1 })).toThrow(TypeError);
    expect(() => signMessageDelete({ chatId: CHAT, messageId: 'nope', device: alice.devices[0]!.local, deletedAt: 1 })).toThrow(TypeError);
    expect(() => signMessageDelete({ chatId: CHAT, messageId: MESSAGE, device: alice.devices[0]!.local, deletedAt: -1 })).toThrow();
  });
});
