// Runs inside headless Chromium (see src/browser.int.spec.ts): the whole
// client flow against the BUILT library (dist/, bundled by esbuild for the
// browser platform), on the page's own WebCrypto. Exposes one function,
// globalThis.bilRoundTrip, whose JSON-safe result the Node side asserts on.
// The spec declares the same input/result shapes.
import * as bil from '../../dist/index.js';

export interface RoundTripInput {
  /** Bob's RSA key (PKCS #8, base64url) from the test fixtures, so Node can open what the page sent him. */
  readonly bobPkcs8: string;
  readonly bobSeed: string;
  /** The digest service's RSA key (PKCS #8, base64url). */
  readonly servicePkcs8: string;
}

export interface RoundTripResult {
  readonly env: {
    readonly hasProcess: boolean;
    readonly hasBuffer: boolean;
    readonly hasRequire: boolean;
    readonly subtle: string;
    readonly secureContext: boolean;
    readonly userAgent: string;
  };
  readonly generatedModulusBits: number;
  readonly direct: Record<string, string>;
  readonly group: Record<string, string>;
  readonly sealed: string;
  readonly tamper: { readonly rejected: boolean; readonly name: string; readonly code: string; readonly message: string };
  /** Sent by the page for Node to open with the library there (wire compatibility). */
  readonly forNode: {
    readonly aliceRecord: bil.DeviceRecord;
    readonly message: bil.DirectMessage;
  };
  readonly ms: number;
}

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

async function roundTrip(input: RoundTripInput): Promise<RoundTripResult> {
  const t0 = performance.now();
  const g = globalThis as Record<string, unknown>;
  const env = {
    hasProcess: typeof g.process !== 'undefined',
    hasBuffer: typeof g.Buffer !== 'undefined',
    hasRequire: typeof g.require !== 'undefined',
    subtle: Object.prototype.toString.call(globalThis.crypto?.subtle),
    secureContext: globalThis.isSecureContext,
    userAgent: navigator.userAgent,
  };

  // Device keys: Alice's generated here by the browser, Bob's and the
  // service's imported from the fixtures.
  const [aliceKeys, bobKeys, serviceKeys] = await Promise.all([
    bil.generateDeviceKeys(),
    bil.importDevicePrivateKeys({ version: 1, encryption_key_pkcs8: input.bobPkcs8, signing_key_seed: input.bobSeed }),
    bil.importDevicePrivateKeys({ version: 1, encryption_key_pkcs8: input.servicePkcs8, signing_key_seed: bil.toBase64Url(new Uint8Array(32).fill(9)) }),
  ]);
  const generatedModulusBits = (aliceKeys.encryption.privateKey.algorithm as RsaHashedKeyAlgorithm).modulusLength;

  // Certificates: each account's identity key certifies its device; the
  // other side verifies them under the pinned identity key.
  const alice = uuid(1);
  const bob = uuid(2);
  const aliceId = bil.createAccountIdentity({ userId: alice, device: bil.exportDevicePublicKeys(aliceKeys), issuedAt: 1 });
  const bobId = bil.createAccountIdentity({ userId: bob, device: bil.exportDevicePublicKeys(bobKeys), issuedAt: 2 });
  const aliceRecord: bil.DeviceRecord = { ...aliceId.certificate, device_id: uuid(11) };
  const bobRecord: bil.DeviceRecord = { ...bobId.certificate, device_id: uuid(21) };
  const pins = new bil.IdentityPins();
  pins.check(alice, aliceId.certificate.identity_key);
  pins.check(bob, bobId.certificate.identity_key);
  const aliceVerified = await bil.verifyDevice(aliceRecord, pins.pinned(alice)!);
  const bobVerified = await bil.verifyDevice(bobRecord, pins.pinned(bob)!);
  const aliceLocal: bil.LocalDevice = { userId: alice, deviceId: uuid(11), keys: aliceKeys };
  const bobLocal: bil.LocalDevice = { userId: bob, deviceId: uuid(21), keys: bobKeys };

  // Direct messages, both suites, with a replay guard on Bob's side.
  const chatId = uuid(3);
  const replay = new bil.ReplayGuard();
  const direct: Record<string, string> = {};
  let counter = 0;
  let firstMessage: bil.DirectMessage | undefined;
  for (const suite of bil.SUITES) {
    const text = `direct ${suite} 🔐`;
    const msg = await bil.encryptDirectMessage({
      sender: aliceLocal, chatId, messageId: uuid(100 + counter), counter: ++counter, timestamp: Date.now(),
      plaintext: bil.utf8(text), recipients: [bobVerified], recipientUserId: bob, suite,
    });
    firstMessage ??= msg;
    const wire = JSON.parse(JSON.stringify(msg)) as bil.DirectMessage;
    const opened = await bil.decryptDirectMessage({
      envelope: wire.envelope, wrappedKey: wire.wrapped_keys[0]!, recipient: bobLocal, chatId, sender: aliceVerified, replay, chatUsers: [alice, bob],
    });
    direct[suite] = bil.fromUtf8(opened.plaintext);
  }

  // Group: Alice creates it, Bob verifies the chain and unwraps his epoch key.
  const groupId = uuid(4);
  const created = await bil.createGroup({
    chatId: groupId, admin: aliceLocal, createdAt: 5,
    members: [{ role: 'admin', devices: [aliceVerified] }, { role: 'member', devices: [bobVerified] }],
  });
  const bobChain = await bil.verifyGroupChain(JSON.parse(JSON.stringify([created.record])) as bil.SignedEpochRecord[], { chatId: groupId });
  const bobEpochKey = await bil.unwrapEpochKey({
    chain: bobChain, epoch: 1, wrappedKey: created.wrappedKeys.find((w) => w.device_id === bobLocal.deviceId)!, recipient: bobLocal,
  });
  const group: Record<string, string> = {};
  for (const suite of bil.SUITES) {
    const env = await bil.encryptGroupMessage({
      sender: aliceLocal, chain: created.chain, epochKey: created.epochKey, messageId: uuid(200 + counter), counter: ++counter,
      timestamp: Date.now(), plaintext: bil.utf8(`group ${suite}`), suite,
    });
    const opened = await bil.decryptGroupMessage({ envelope: JSON.parse(JSON.stringify(env)), chain: bobChain, epochKeys: [bobEpochKey] });
    group[suite] = bil.fromUtf8(opened.plaintext);
  }

  // Sealed payload to a service key, signed by Alice's device.
  const serviceIdentity = bil.identityKeyFromSeed(new Uint8Array(32).fill(5));
  const published = await bil.signServiceKey({ identity: serviceIdentity, service: 'digest', encryptionKey: serviceKeys.encryption.spki, issuedAt: 0, expiresAt: 100 });
  const to = await bil.verifyServiceKey(published, { identityKey: bil.toBase64Url(serviceIdentity.publicKey), service: 'digest', now: 50 });
  const box = await bil.sealPayload({ to, kind: 'digest-request', context: 'job-1', createdAt: 50, plaintext: bil.utf8('sealed transcript'), signer: aliceKeys.signing });
  const unsealed = await bil.openSealedPayload(JSON.parse(JSON.stringify(box)), {
    privateKey: serviceKeys.encryption.privateKey, keyId: to.keyId, kind: 'digest-request', context: 'job-1', signerKey: aliceRecord.signing_key,
  });

  // Tamper: one flipped ciphertext bit must give the uniform error.
  const msg = firstMessage!;
  const ct = bil.fromBase64Url(msg.envelope.ciphertext);
  ct[7]! ^= 1;
  const tampered = { ...msg.envelope, ciphertext: bil.toBase64Url(ct) };
  let tamper = { rejected: false, name: '', code: '', message: '' };
  try {
    await bil.decryptDirectMessage({ envelope: tampered, wrappedKey: msg.wrapped_keys[0]!, recipient: bobLocal, chatId, sender: aliceVerified });
  } catch (e) {
    const err = e as bil.CannotDecryptError;
    tamper = { rejected: e instanceof bil.CannotDecryptError, name: err.name, code: err.code, message: err.message };
  }

  return {
    env,
    generatedModulusBits,
    direct,
    group,
    sealed: bil.fromUtf8(unsealed.plaintext),
    tamper,
    forNode: { aliceRecord, message: JSON.parse(JSON.stringify(msg)) as bil.DirectMessage },
    ms: Math.round(performance.now() - t0),
  };
}

(globalThis as Record<string, unknown>).bilRoundTrip = roundTrip;
