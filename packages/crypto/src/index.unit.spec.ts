// The whole flow through the public entry point only, as the SDK will use it.
import { describe, expect, it } from 'vitest';
import * as bil from './index.js';
import { keyPool, uuid } from './testing/fixtures.js';

describe('public API', () => {
  it('first device, linked device, pinning, direct and group messages, digest sealing', async () => {
    const [a1, a2, b1, svc] = (await keyPool()).slice(0, 4) as [bil.DeviceKeyPair, bil.DeviceKeyPair, bil.DeviceKeyPair, bil.DeviceKeyPair];
    const alice = uuid(1);
    const bob = uuid(2);
    const chat = uuid(3);

    const aFirst = bil.createAccountIdentity({ userId: alice, device: bil.exportDevicePublicKeys(a1), issuedAt: 1 });
    const aLinked = bil.linkDevice({ identity: aFirst.identity, userId: alice, newDevice: bil.exportDevicePublicKeys(a2), issuedAt: 2 });
    const bFirst = bil.createAccountIdentity({ userId: bob, device: bil.exportDevicePublicKeys(b1), issuedAt: 3 });
    const directory: bil.DeviceRecord[] = [
      { ...aFirst.certificate, device_id: uuid(11) },
      { ...aLinked, device_id: uuid(12) },
      { ...bFirst.certificate, device_id: uuid(21) },
    ];

    // Bob's client pins alice's key on first use and verifies her devices with it.
    const pins = new bil.IdentityPins();
    expect(pins.check(alice, aFirst.certificate.identity_key).status).toBe('first-use');
    const aliceDevices = await bil.selectCertifiedDevices(directory.slice(0, 2), pins.pinned(alice)!);
    const bobDevice = await bil.verifyDevice(directory[2]!, bFirst.certificate.identity_key);
    const a1Verified = aliceDevices.certified[0]!;

    const me: bil.LocalDevice = { userId: alice, deviceId: uuid(11), keys: a1 };
    const msg = await bil.encryptDirectMessage({
      sender: me, chatId: chat, messageId: uuid(100), counter: 1, timestamp: 10,
      plaintext: bil.utf8('hi'), recipients: [bobDevice, aliceDevices.certified[1]!], recipientUserId: bob, suite: 'chacha20-poly1305',
    });
    const bobLocal: bil.LocalDevice = { userId: bob, deviceId: uuid(21), keys: b1 };
    const routed = bil.readEnvelopeHeader(msg.envelope);
    expect(routed.sender_device_id).toBe(uuid(11));
    const opened = await bil.decryptDirectMessage({
      envelope: msg.envelope, wrappedKey: msg.wrapped_keys[0]!, recipient: bobLocal, chatId: chat, sender: a1Verified, replay: new bil.ReplayGuard(),
    });
    expect(bil.fromUtf8(opened.plaintext)).toBe('hi');

    const group = await bil.createGroup({ chatId: uuid(4), admin: me, createdAt: 5, members: [{ role: 'admin', devices: [a1Verified] }, { role: 'member', devices: [bobDevice] }] });
    const chain = await bil.verifyGroupChain([group.record], { chatId: uuid(4) });
    const bobKey = await bil.unwrapEpochKey({ chain, epoch: 1, wrappedKey: group.wrappedKeys.find((w) => w.device_id === uuid(21))!, recipient: bobLocal });
    const env = await bil.encryptGroupMessage({ sender: me, chain: group.chain, epochKey: group.epochKey, messageId: uuid(101), counter: 2, timestamp: 11, plaintext: bil.utf8('all') });
    expect(bil.fromUtf8((await bil.decryptGroupMessage({ envelope: env, chain, epochKeys: [bobKey] })).plaintext)).toBe('all');

    const svcIdentity = bil.identityKeyFromSeed(new Uint8Array(32).fill(5));
    const published = await bil.signServiceKey({ identity: svcIdentity, service: 'digest', encryptionKey: svc.encryption.spki, issuedAt: 0, expiresAt: 100 });
    const to = await bil.verifyServiceKey(published, { identityKey: bil.toBase64Url(svcIdentity.publicKey), service: 'digest', now: 50 });
    const box = await bil.sealPayload({ to, kind: 'digest-request', context: 'job-1', createdAt: 50, plaintext: bil.utf8('transcript') });
    const out = await bil.openSealedPayload(box, { privateKey: svc.encryption.privateKey, keyId: to.keyId, kind: 'digest-request', context: 'job-1' });
    expect(bil.fromUtf8(out.plaintext)).toBe('transcript');

    const sn = await bil.safetyNumber({ userId: alice, identityKey: aFirst.certificate.identity_key }, { userId: bob, identityKey: bFirst.certificate.identity_key });
    expect(bil.formatSafetyNumber(sn)).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(new bil.CannotDecryptError().message).toBe('cannot decrypt');
  });
});
