// Test support (excluded from the build): builds the test vectors published in
// docs/testvectors/ from fixed keys and seeded randomness. scripts/vectors.ts
// writes them; vectors.unit.spec.ts rebuilds and compares them byte for byte.
import { sha256 } from '@noble/hashes/sha2.js';
import { canonicalize } from '../canonical-json.js';
import { certifyDevice, verifyDevice, type DeviceRecord } from '../certificate.js';
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from '../encoding.js';
import { encryptDirectMessage, personalChatId } from '../direct.js';
import { contentSubkeys, envelopeSignatureInput, type LocalDevice } from '../envelope.js';
import { createGroup, GROUP_PURPOSE } from '../group.js';
import { encryptGroupMessage } from '../group-message.js';
import { signGroupLeave } from '../group-leave.js';
import { hkdfSha256 } from '../kdf.js';
import { exportDevicePublicKeys, generateDeviceKeys, importDevicePrivateKeys, type DeviceKeyPair } from '../keys.js';
import { paddedLength } from '../padding.js';
import type { EntropySource } from '../random.js';
import { safetyNumber, fingerprint } from '../safety-number.js';
import { sealKeyId, sealPayload, signServiceKey, verifyServiceKey } from '../seal.js';
import { generateEd25519KeyPair } from '../signature.js';
import { seededEntropy } from './deterministic.js';
import type { Suite } from '../aead.js';

export const NOW = 1764100000000;
/**
 * The stated check time of every vector file (`check_time`, ms since the Unix
 * epoch): a checker uses it as "now" for validity windows (the service key's
 * `issued_at ≤ now < expires_at`), never its own clock. After every time in the files.
 */
export const CHECK_TIME = NOW + 60_000;
/** What each file says about `check_time`. */
export const CHECK_TIME_NOTE = 'check_time (ms since the Unix epoch) is the "now" to check validity windows against (e.g. issued_at <= check_time < expires_at); not the checker\'s clock.';
/** The digest request of sealed.json: its sealed-box context binds request, chat and device. */
export const DIGEST_REQUEST_ID = '0193c2a4-0000-7000-8000-000000000001';

/** docs/testvectors/keys.json: TEST-ONLY keys every other vector file uses. */
export interface VectorKeys {
  readonly description: string;
  readonly users: Record<
    string,
    {
      user_id: string;
      identity_seed: string;
      identity_key: string;
      devices: { device_id: string; rsa_pkcs8: string; signing_seed: string; encryption_key: string; signing_key: string }[];
    }
  >;
  readonly digest_service: { identity_seed: string; identity_key: string; rsa_pkcs8: string; encryption_key: string };
  /** {@link CHECK_TIME} (added to files written before it was stated). */
  readonly check_time?: number;
}

const seedOf = (label: string) => toBase64Url(sha256(utf8(`bil test vector: ${label}`)));

const LAYOUT = {
  alice: { user_id: '0193c2a0-0000-7000-8000-00000000a11c', devices: ['0193c2a0-0001-7000-8000-00000000a11c', '0193c2a0-0002-7000-8000-00000000a11c'] },
  bob: { user_id: '0193c2a0-0000-7000-8000-000000000b0b', devices: ['0193c2a0-0001-7000-8000-000000000b0b'] },
};
export const GROUP_CHAT_ID = '0193c2a1-0000-7000-8000-0000000000e1';

async function pkcs8Of(k: DeviceKeyPair): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.exportKey('pkcs8', k.encryption.privateKey)));
}

/** Generates a fresh keys.json (only when none exists: vectors must stay stable). */
export async function generateVectorKeys(): Promise<VectorKeys> {
  const users: VectorKeys['users'] = {};
  for (const [name, l] of Object.entries(LAYOUT)) {
    const identity_seed = seedOf(`${name} identity`);
    const devices = [];
    for (const [i, device_id] of l.devices.entries()) {
      const k = await generateDeviceKeys();
      const signing_seed = seedOf(`${name} device ${i + 1} signing`);
      const pub = exportDevicePublicKeys({ ...k, signing: generateEd25519KeyPair(fromBase64Url(signing_seed)) });
      devices.push({ device_id, rsa_pkcs8: await pkcs8Of(k), signing_seed, ...pub });
    }
    users[name] = { user_id: l.user_id, identity_seed, identity_key: toBase64Url(generateEd25519KeyPair(fromBase64Url(identity_seed)).publicKey), devices };
  }
  const svc = await generateDeviceKeys();
  const identity_seed = seedOf('digest service identity');
  return {
    description: 'TEST-ONLY keys for the bil-message test vectors. Never use them for anything else. Seeds are Ed25519 32-byte seeds (RFC 8032 §5.1.5); RSA keys are PKCS #8 DER; all base64url.',
    check_time: CHECK_TIME,
    users,
    digest_service: {
      identity_seed,
      identity_key: toBase64Url(generateEd25519KeyPair(fromBase64Url(identity_seed)).publicKey),
      rsa_pkcs8: await pkcs8Of(svc),
      encryption_key: toBase64Url(svc.encryption.spki),
    },
  };
}

/** keys.json with its stated check time (the keys themselves never change). */
export function withCheckTime(keys: VectorKeys): VectorKeys {
  const { description, check_time: _old, ...rest } = keys;
  return { description, check_time: CHECK_TIME, ...rest };
}

export interface VectorDevice {
  local: LocalDevice;
  record: DeviceRecord;
}

/** Loads the vector keys into local devices with certificates. */
export async function loadVectorKeys(keys: VectorKeys): Promise<Record<string, { identity: ReturnType<typeof generateEd25519KeyPair>; devices: VectorDevice[] }>> {
  const out: Record<string, { identity: ReturnType<typeof generateEd25519KeyPair>; devices: VectorDevice[] }> = {};
  for (const [name, u] of Object.entries(keys.users)) {
    const identity = generateEd25519KeyPair(fromBase64Url(u.identity_seed));
    const devices: VectorDevice[] = [];
    for (const d of u.devices) {
      const k = await importDevicePrivateKeys({ version: 1, encryption_key_pkcs8: d.rsa_pkcs8, signing_key_seed: d.signing_seed });
      const cert = certifyDevice({ identity, userId: u.user_id, device: exportDevicePublicKeys(k), issuedAt: NOW });
      devices.push({ local: { userId: u.user_id, deviceId: d.device_id, keys: k }, record: { ...cert, device_id: d.device_id } });
    }
    out[name] = { identity, devices };
  }
  return out;
}

/** Wraps a seeded source and records every random output, in order. */
function recording(label: string): EntropySource & { outputs: Uint8Array[]; oaepSeeds: Uint8Array[] } {
  const inner = seededEntropy(label);
  const outputs: Uint8Array[] = [];
  return {
    outputs,
    oaepSeeds: inner.log.oaepSeeds,
    randomBytes(n) {
      const b = inner.randomBytes(n);
      outputs.push(Uint8Array.from(b));
      return b;
    },
    rsaOaepEncrypt: (k, p, l) => inner.rsaOaepEncrypt(k, p, l),
  };
}

/** Builds every vector file's content (keyed by file name). */
export async function buildVectors(keys: VectorKeys): Promise<Record<string, unknown>> {
  const people = await loadVectorKeys(keys);
  const alice = people.alice!;
  const bob = people.bob!;
  const pin = (name: string) => keys.users[name]!.identity_key;
  const verified = async (d: VectorDevice, owner: string) => verifyDevice(d.record, pin(owner));

  const certificates = {
    description: `Device certificates (docs/protocol.md, "Account identity key and device certificates"). payload is the exact UTF-8 text signed. ${CHECK_TIME_NOTE}`,
    check_time: CHECK_TIME,
    vectors: [...alice.devices.map((d) => ['alice', d] as const), ...bob.devices.map((d) => ['bob', d] as const)].map(([owner, d]) => ({
      owner,
      payload: canonicalize({ type: 'bil.device-certificate.v1', user_id: d.record.user_id, identity_key: d.record.identity_key, encryption_key: d.record.encryption_key, signing_key: d.record.signing_key, issued_at: d.record.issued_at }),
      record: d.record,
    })),
  };

  // The personal chat of alice and bob: its id derives from their user ids.
  const DIRECT_CHAT_ID = await personalChatId(alice.devices[0]!.local.userId, bob.devices[0]!.local.userId);
  const [lower, higher] = [alice.devices[0]!.local.userId, bob.devices[0]!.local.userId].sort();
  const personalChat = { user_ids: [lower, higher], sha256_input: `bil.personal-chat.v1:${lower}:${higher}`, chat_id: DIRECT_CHAT_ID };
  const direct = [];
  for (const suite of ['aes-256-gcm', 'chacha20-poly1305'] as Suite[]) {
    const entropy = recording(`direct ${suite}`);
    const plaintext = `Hi Bob, lunch at 1? (${suite})`;
    const params = {
      sender: alice.devices[0]!.local,
      chatId: DIRECT_CHAT_ID,
      messageId: suite === 'aes-256-gcm' ? '0193c2a2-0000-7000-8000-000000000001' : '0193c2a2-0000-7000-8000-000000000002',
      counter: suite === 'aes-256-gcm' ? 1 : 2,
      timestamp: NOW + 1000,
      plaintext: utf8(plaintext),
      suite,
      recipientUserId: bob.devices[0]!.local.userId,
      // Every device of both users, the sending device included (it reads its own message back).
      recipients: [await verified(bob.devices[0]!, 'bob'), await verified(alice.devices[1]!, 'alice'), await verified(alice.devices[0]!, 'alice')],
    };
    const msg = await encryptDirectMessage(params, entropy);
    const contentKey = entropy.outputs[0]!;
    const { aeadKey, commitment } = await contentSubkeys(contentKey, params.messageId);
    direct.push({
      suite,
      inputs: { plaintext_utf8: plaintext, sender_device_id: params.sender.deviceId, recipients: params.recipients.map((r) => r.deviceId) },
      intermediate: {
        content_key: toBase64Url(contentKey),
        aead_key: toBase64Url(aeadKey),
        commitment: toBase64Url(commitment),
        nonce: msg.envelope.header.nonce,
        padded_length: paddedLength(plaintext.length),
        associated_data: canonicalize(msg.envelope.header as never),
        signature_input: fromUtf8(await envelopeSignatureInput(msg.envelope.header, fromBase64Url(msg.envelope.ciphertext))),
        oaep: msg.wrapped_keys.map((w, i) => ({
          device_id: w.device_id,
          label: canonicalize({ purpose: 'bil.message-key.v1', chat_id: DIRECT_CHAT_ID, message_id: params.messageId, sender_device_id: params.sender.deviceId, device_id: w.device_id }),
          seed: toBase64Url(entropy.oaepSeeds[i]!),
        })),
      },
      envelope: msg.envelope,
      wrapped_keys: msg.wrapped_keys,
    });
  }

  const gEntropy = recording('group');
  const members = [
    { role: 'admin' as const, devices: await Promise.all(alice.devices.map((d) => verified(d, 'alice'))) },
    { role: 'member' as const, devices: [await verified(bob.devices[0]!, 'bob')] },
  ];
  const metadata = { title: 'Weekend trip' };
  const genesis = await createGroup({ chatId: GROUP_CHAT_ID, admin: alice.devices[0]!.local, members, createdAt: NOW + 2000, metadata }, gEntropy);
  const leave = signGroupLeave({ chain: genesis.chain, device: bob.devices[0]!.local, createdAt: NOW + 5000 });
  const groupMessages = [];
  for (const [i, suite] of (['aes-256-gcm', 'chacha20-poly1305'] as Suite[]).entries()) {
    const mEntropy = recording(`group message ${suite}`);
    const messageId = `0193c2a3-0000-7000-8000-00000000000${i + 1}`;
    const plaintext = `Welcome to the group (${suite})`;
    const env = await encryptGroupMessage(
      { sender: bob.devices[0]!.local, chain: genesis.chain, epochKey: genesis.epochKey, messageId, counter: i + 1, timestamp: NOW + 3000, plaintext: utf8(plaintext), suite },
      mEntropy,
    );
    const info = canonicalize({ purpose: GROUP_PURPOSE.groupMessageKey, chat_id: GROUP_CHAT_ID, epoch: 1, message_id: messageId, sender_device_id: bob.devices[0]!.local.deviceId });
    const messageKey = await hkdfSha256(genesis.epochKey.key, new Uint8Array(), utf8(info), 32);
    const { aeadKey, commitment } = await contentSubkeys(messageKey, messageId);
    groupMessages.push({
      suite,
      inputs: { plaintext_utf8: plaintext },
      intermediate: {
        hkdf_info: info,
        message_key: toBase64Url(messageKey),
        aead_key: toBase64Url(aeadKey),
        commitment: toBase64Url(commitment),
        associated_data: canonicalize(env.header as never),
        signature_input: fromUtf8(await envelopeSignatureInput(env.header, fromBase64Url(env.ciphertext))),
      },
      envelope: env,
    });
  }
  const group = {
    description: `Group chat: genesis epoch record (version 2, its metadata sealed under the epoch key) signed by alice device 1 (admin), epoch key wrapped per device, messages from bob, and bob's signed leave. ${CHECK_TIME_NOTE}`,
    check_time: CHECK_TIME,
    chat_id: GROUP_CHAT_ID,
    records: [genesis.record],
    intermediate: {
      epoch_key: toBase64Url(genesis.epochKey.key),
      record_signature_input: canonicalize(genesis.record.payload as never),
      record_hash: genesis.chain.head.hash,
      metadata_plaintext: canonicalize(metadata),
      metadata_key_info: canonicalize({ purpose: GROUP_PURPOSE.metadataKey, chat_id: GROUP_CHAT_ID, epoch: 1 }),
      metadata_key: toBase64Url(await hkdfSha256(genesis.epochKey.key, new Uint8Array(), utf8(canonicalize({ purpose: GROUP_PURPOSE.metadataKey, chat_id: GROUP_CHAT_ID, epoch: 1 })), 32)),
      metadata_associated_data: canonicalize({ purpose: GROUP_PURPOSE.metadata, chat_id: GROUP_CHAT_ID, epoch: 1 }),
      key_commitment_label: canonicalize({ purpose: GROUP_PURPOSE.epochKeyCommitment, chat_id: GROUP_CHAT_ID, epoch: 1 }),
      oaep: genesis.wrappedKeys.map((w, i) => ({
        device_id: w.device_id,
        label: canonicalize({ purpose: GROUP_PURPOSE.epochKey, chat_id: GROUP_CHAT_ID, epoch: 1, record_hash: genesis.chain.head.hash, device_id: w.device_id }),
        seed: toBase64Url(gEntropy.oaepSeeds[i]!),
      })),
    },
    wrapped_keys: genesis.wrappedKeys,
    messages: groupMessages,
    leave: { description: 'bob device 1 leaves the group at epoch 1; signature_input is the exact text signed.', signature_input: canonicalize(leave.payload as never), leave },
  };

  const svc = keys.digest_service;
  const svcIdentity = generateEd25519KeyPair(fromBase64Url(svc.identity_seed));
  const serviceKey = await signServiceKey({ identity: svcIdentity, service: 'digest', encryptionKey: fromBase64Url(svc.encryption_key), issuedAt: NOW, expiresAt: NOW + 30 * 86400000 });
  const sEntropy = recording('sealed');
  const to = await verifyServiceKey(serviceKey, { identityKey: svcIdentity.publicKey, service: 'digest', now: NOW + 1 });
  // A bil.digest-transcript.v2 plaintext (docs/digest.md), fields in the documented order, for the group chat.
  const requester = alice.devices[0]!.local;
  const context = `${DIGEST_REQUEST_ID}:${GROUP_CHAT_ID}:${requester.deviceId}`;
  const sealedText = JSON.stringify({
    type: 'bil.digest-transcript.v2',
    request_id: DIGEST_REQUEST_ID,
    chat_id: GROUP_CHAT_ID,
    device_id: requester.deviceId,
    title: 'lunch',
    from_seq: 1,
    to_seq: 2,
    messages: [
      { seq: 1, sender: 'alice', sender_user_id: requester.userId, sent_at: NOW + 3000, text: 'lunch at 1?' },
      { seq: 2, sender: 'bob', sender_user_id: bob.devices[0]!.local.userId, sent_at: NOW + 3500, text: 'yes, see you there' },
    ],
  });
  const box = await sealPayload(
    { to, kind: 'digest-request', context, createdAt: NOW + 4000, plaintext: utf8(sealedText), signer: requester.keys.signing },
    sEntropy,
  );
  const sealKey = sEntropy.outputs[0]!;
  const sealed = {
    description: `A digest request sealed to the digest service key, signed by alice device 1; its context is "<request_id>:<chat_id>:<device_id>". ${CHECK_TIME_NOTE}`,
    check_time: CHECK_TIME,
    service_key: serviceKey,
    service_key_id: await sealKeyId(fromBase64Url(svc.encryption_key)),
    inputs: { request_id: DIGEST_REQUEST_ID, chat_id: GROUP_CHAT_ID, device_id: requester.deviceId, plaintext_utf8: sealedText },
    intermediate: {
      transcript_sha256: toBase64Url(sha256(utf8(sealedText))),
      content_key: toBase64Url(sealKey),
      oaep_label: canonicalize({ purpose: 'bil.sealed-key.v1', key_id: box.header.key_id, kind: box.header.kind, context: box.header.context }),
      oaep_seed: toBase64Url(sEntropy.oaepSeeds[0]!),
      associated_data: canonicalize(box.header as never),
    },
    box,
  };

  const a = { userId: keys.users.alice!.user_id, identityKey: pin('alice') };
  const b = { userId: keys.users.bob!.user_id, identityKey: pin('bob') };
  const safety = {
    description: `Fingerprints (30 digits each) and the 60-digit safety number of alice and bob (docs/protocol.md, "Key pinning and safety numbers"). ${CHECK_TIME_NOTE}`,
    check_time: CHECK_TIME,
    alice: { user_id: a.userId, identity_key: a.identityKey, fingerprint: await fingerprint(a) },
    bob: { user_id: b.userId, identity_key: b.identityKey, fingerprint: await fingerprint(b) },
    safety_number: await safetyNumber(a, b),
  };

  return {
    'certificates.json': certificates,
    'direct.json': {
      description: `Direct messages from alice device 1, wrapped to bob device 1, alice device 2 and the sending device itself, one per suite. ${CHECK_TIME_NOTE}`,
      check_time: CHECK_TIME,
      chat_id: DIRECT_CHAT_ID,
      personal_chat: personalChat,
      vectors: direct,
    },
    'group.json': group,
    'sealed.json': sealed,
    'safety-number.json': safety,
  };
}
