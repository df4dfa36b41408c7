// The published vectors in docs/testvectors/ (written by scripts/vectors.ts):
// rebuilt byte for byte from the fixed keys and seeded randomness, and opened
// through the public decryption paths with nothing but the files' contents.
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize } from './canonical-json.js';
import { verifyDevice, verifyDeviceCertificate, type DeviceRecord } from './certificate.js';
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from './encoding.js';
import { decryptDirectMessage, personalChatId } from './direct.js';
import { verifyGroupLeave } from './group-leave.js';
import { contentSubkeys, type Envelope, type WrappedKey } from './envelope.js';
import { openGroupMetadata, unwrapEpochKey, verifyGroupChain, type SignedEpochRecord } from './group.js';
import { decryptGroupMessage } from './group-message.js';
import { importEncryptionPrivateKey } from './keys.js';
import { fingerprint, safetyNumber } from './safety-number.js';
import { openSealedPayload, verifyServiceKey, type SealedBox, type SignedServiceKey } from './seal.js';
import { ed25519Verify } from './signature.js';
import { buildVectors, CHECK_TIME, loadVectorKeys, NOW, type VectorKeys } from './testing/vectors.js';
import { buildDeviceListVectors } from './testing/vectors-device-list.js';
import { buildMessageDeleteVectors } from './testing/vectors-message-delete.js';
import { verifyMessageDelete, type SignedMessageDelete } from './message-delete.js';
import { buildChatTimerVectors } from './testing/vectors-chat-timer.js';
import { parseChatTimer, verifyChatTimer, type SignedChatTimer } from './chat-timer.js';
import { buildContentVectors } from './testing/vectors-content.js';
import { decodeContent, encodeContent, type MessageContent } from './content.js';
import { deviceInList, verifyDeviceList, type SignedDeviceList } from './device-list.js';
import { rsaOaepDecrypt } from './wrap.js';

const dir = new URL('../../../docs/testvectors/', import.meta.url);
const read = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T;
const keys = read<VectorKeys>('keys.json');

let people: Awaited<ReturnType<typeof loadVectorKeys>>;
beforeAll(async () => {
  people = await loadVectorKeys(keys);
});

describe('docs/testvectors', () => {
  it('message-delete.json: reproduced byte for byte, and the tombstone verifies under the signing key', async () => {
    for (const [name, content] of Object.entries(await buildMessageDeleteVectors(keys))) {
      expect(JSON.stringify(content, null, 2) + '\n', name).toBe(readFileSync(new URL(name, dir), 'utf8'));
    }
    const v = read<{ signing_key: string; signature_input: string; tombstone: SignedMessageDelete }>('message-delete.json');
    expect(canonicalize(v.tombstone.payload as never)).toBe(v.signature_input);
    const p = v.tombstone.payload;
    await expect(verifyMessageDelete({ tombstone: v.tombstone, chatId: p.chat_id, messageId: p.message_id, senderUserId: p.sender_user_id, signingKey: v.signing_key })).resolves.toEqual(p);
  });

  it('chat-timer.json: reproduced byte for byte, and the statement verifies under the setting device, certified by its identity key', async () => {
    for (const [name, content] of Object.entries(await buildChatTimerVectors(keys))) {
      expect(JSON.stringify(content, null, 2) + '\n', name).toBe(readFileSync(new URL(name, dir), 'utf8'));
    }
    const v = read<{ members: [string, string]; signing_key: string; signature_input: string; statement: SignedChatTimer }>('chat-timer.json');
    expect(canonicalize(v.statement.payload as never)).toBe(v.signature_input);
    expect(ed25519Verify(fromBase64Url(v.signing_key), utf8(v.signature_input), fromBase64Url(v.statement.signature))).toBe(true);
    const p = parseChatTimer(v.statement);
    const signer = Object.entries(keys.users).find(([, u]) => u.user_id === p.set_by_user_id)!;
    const devices = await Promise.all(people[signer[0]]!.devices.map((d) => verifyDevice(d.record, signer[1].identity_key)));
    await expect(verifyChatTimer({ statement: v.statement, chatId: await personalChatId(...v.members), members: v.members, devices })).resolves.toEqual(p);
  });

  it('scripts/vectors.ts output is reproduced byte for byte', async () => {
    const built = await buildVectors(keys);
    for (const [name, content] of Object.entries(built)) {
      expect(JSON.stringify(content, null, 2) + '\n', name).toBe(readFileSync(new URL(name, dir), 'utf8'));
    }
  });

  it('certificates.json: payload text is what the identity key signed', () => {
    const { vectors } = read<{ vectors: { owner: string; payload: string; record: DeviceRecord }[] }>('certificates.json');
    for (const v of vectors) {
      const { device_id: _d, certificate, ...fields } = v.record;
      expect(canonicalize({ type: 'bil.device-certificate.v1', ...fields })).toBe(v.payload);
      expect(ed25519Verify(fromBase64Url(keys.users[v.owner]!.identity_key), utf8(v.payload), fromBase64Url(certificate))).toBe(true);
      verifyDeviceCertificate(v.record);
    }
  });

  it('direct.json: each recipient, the sending device included, decrypts, and the intermediates check out', async () => {
    const file = read<{ chat_id: string; personal_chat: { user_ids: [string, string]; chat_id: string }; vectors: { suite: string; inputs: { plaintext_utf8: string }; intermediate: Record<string, unknown> & { oaep: { device_id: string; label: string }[] }; envelope: Envelope; wrapped_keys: WrappedKey[] }[] }>('direct.json');
    const alice = people.alice!;
    const bob = people.bob!;
    const sender = await verifyDevice(alice.devices[0]!.record, keys.users.alice!.identity_key);
    expect(await personalChatId(...file.personal_chat.user_ids)).toBe(file.chat_id);
    for (const v of file.vectors) {
      const contentKey = fromBase64Url(v.intermediate.content_key as string);
      const sub = await contentSubkeys(contentKey, v.envelope.header.message_id);
      expect(toBase64Url(sub.aeadKey)).toBe(v.intermediate.aead_key);
      expect(toBase64Url(sub.commitment)).toBe(v.envelope.header.commitment);
      expect(canonicalize(v.envelope.header as never)).toBe(v.intermediate.associated_data);
      expect(v.wrapped_keys.map((w) => w.device_id)).toEqual([bob.devices[0]!, alice.devices[1]!, alice.devices[0]!].map((d) => d.local.deviceId));
      for (const d of [bob.devices[0]!, alice.devices[1]!, alice.devices[0]!]) {
        const wk = v.wrapped_keys.find((w) => w.device_id === d.local.deviceId)!;
        const label = v.intermediate.oaep.find((o) => o.device_id === d.local.deviceId)!.label;
        expect(await rsaOaepDecrypt(d.local.keys.encryption.privateKey, fromBase64Url(wk.wrapped_key), utf8(label))).toEqual(contentKey);
        const { plaintext } = await decryptDirectMessage({ envelope: v.envelope, wrappedKey: wk, recipient: d.local, chatId: v.envelope.header.chat_id, sender, chatUsers: file.personal_chat.user_ids });
        expect(fromUtf8(plaintext)).toBe(v.inputs.plaintext_utf8);
      }
    }
  });

  it('group.json: the chain verifies, every device unwraps the epoch key, messages decrypt', async () => {
    const g = read<{
      chat_id: string;
      records: SignedEpochRecord[];
      intermediate: { epoch_key: string; record_hash: string; metadata_plaintext: string };
      wrapped_keys: WrappedKey[];
      messages: { inputs: { plaintext_utf8: string }; envelope: Envelope }[];
      leave: { signature_input: string; leave: { payload: unknown } };
    }>('group.json');
    const chain = await verifyGroupChain(g.records, { chatId: g.chat_id });
    expect(chain.head.hash).toBe(g.intermediate.record_hash);
    for (const d of [...people.alice!.devices, ...people.bob!.devices]) {
      const k = await unwrapEpochKey({ chain, epoch: 1, wrappedKey: g.wrapped_keys.find((w) => w.device_id === d.local.deviceId)!, recipient: d.local });
      expect(toBase64Url(k.key)).toBe(g.intermediate.epoch_key);
      for (const m of g.messages) expect(fromUtf8((await decryptGroupMessage({ envelope: m.envelope, chain, epochKeys: [k] })).plaintext)).toBe(m.inputs.plaintext_utf8);
      expect(canonicalize((await openGroupMetadata({ chain, epochKey: k })) as never)).toBe(g.intermediate.metadata_plaintext);
    }
    expect(canonicalize(g.leave.leave.payload as never)).toBe(g.leave.signature_input);
    expect(await verifyGroupLeave({ chain, leave: g.leave.leave })).toMatchObject({ userId: people.bob!.devices[0]!.local.userId, epoch: 1 });
  });

  it('sealed.json: the service key is valid at check_time, and the digest service opens the request under its context', async () => {
    const s = read<{
      check_time: number;
      service_key: SignedServiceKey;
      service_key_id: string;
      inputs: { request_id: string; chat_id: string; device_id: string; plaintext_utf8: string };
      intermediate: { transcript_sha256: string };
      box: SealedBox;
    }>('sealed.json');
    const identity = { identityKey: keys.digest_service.identity_key, service: 'digest' };
    const to = await verifyServiceKey(s.service_key, { ...identity, now: s.check_time });
    expect(to.keyId).toBe(s.service_key_id);
    // The window is checked: the stated time is what makes it pass, not the checker's clock.
    const { issued_at: issuedAt, expires_at: expiresAt } = s.service_key.payload as unknown as { issued_at: number; expires_at: number };
    expect(issuedAt <= s.check_time && s.check_time < expiresAt).toBe(true);
    await expect(verifyServiceKey(s.service_key, { ...identity, now: expiresAt })).rejects.toThrow();
    const context = `${s.inputs.request_id}:${s.inputs.chat_id}:${s.inputs.device_id}`;
    expect(s.box.header.context).toBe(context);
    const privateKey = await importEncryptionPrivateKey(fromBase64Url(keys.digest_service.rsa_pkcs8));
    const opened = await openSealedPayload(s.box, { privateKey, keyId: s.service_key_id, kind: 'digest-request', context, signerKey: keys.users.alice!.devices[0]!.signing_key });
    expect(fromUtf8(opened.plaintext)).toBe(s.inputs.plaintext_utf8);
    expect(toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', opened.plaintext)))).toBe(s.intermediate.transcript_sha256);
    expect(JSON.parse(s.inputs.plaintext_utf8)).toMatchObject({ type: 'bil.digest-transcript.v2', request_id: s.inputs.request_id, chat_id: s.inputs.chat_id, device_id: s.inputs.device_id });
  });

  it('safety-number.json', async () => {
    type User = { user_id: string; identity_key: string; fingerprint: string };
    const s = read<{ alice: User; bob: User; safety_number: string }>('safety-number.json');
    const user = (u: User) => ({ userId: u.user_id, identityKey: u.identity_key });
    expect(await fingerprint(user(s.alice))).toBe(s.alice.fingerprint);
    expect(await safetyNumber(user(s.bob), user(s.alice))).toBe(s.safety_number);
  });

  it('every vector file states its check_time and is snake_case throughout', () => {
    const snake = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
    const names = readdirSync(dir).filter((n) => n.endsWith('.json'));
    expect(names.length).toBeGreaterThanOrEqual(7);
    for (const name of names) {
      const file = read<Record<string, unknown>>(name);
      expect(file.check_time, name).toBe(CHECK_TIME);
      const walk = (v: unknown, path: string): void => {
        if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
        else if (typeof v === 'object' && v !== null) {
          for (const [k, x] of Object.entries(v)) {
            expect(k, `${name}: ${path}.${k}`).toMatch(snake);
            walk(x, `${path}.${k}`);
          }
        }
      };
      walk(file, '');
    }
    // Every time the files state is before the check time.
    expect(NOW).toBeLessThan(CHECK_TIME);
  });

  it('device-list.json: reproduced byte for byte; payload text is what alice\'s identity key signed; versions grow', async () => {
    for (const [name, content] of Object.entries(await buildDeviceListVectors(keys))) {
      expect(JSON.stringify(content, null, 2) + '\n', name).toBe(readFileSync(new URL(name, dir), 'utf8'));
    }
    const f = read<{ user_id: string; identity_key: string; vectors: { payload: string; list: SignedDeviceList }[] }>('device-list.json');
    const d1 = await verifyDevice(people.alice!.devices[0]!.record, f.identity_key);
    let version = 0;
    for (const v of f.vectors) {
      expect(canonicalize(v.list.payload as never)).toBe(v.payload);
      expect(ed25519Verify(fromBase64Url(f.identity_key), utf8(v.payload), fromBase64Url(v.list.signature))).toBe(true);
      const list = await verifyDeviceList(v.list, f.identity_key, { userId: f.user_id });
      expect(list.version).toBeGreaterThan(version);
      version = list.version;
      expect(deviceInList(list, d1)).toBe(v.list.payload.devices.some((d) => d.device_id === d1.deviceId));
    }
  });

  it('content.json: reproduced byte for byte; each content encodes to its plaintext and decodes back; decoding vectors read as stated', () => {
    for (const [name, content] of Object.entries(buildContentVectors())) {
      expect(JSON.stringify(content, null, 2) + '\n', name).toBe(readFileSync(new URL(name, dir), 'utf8'));
    }
    const f = read<{ encoding: { content: MessageContent; plaintext: string }[]; decoding: { plaintext: string; decoded: unknown }[] }>('content.json');
    expect(f.encoding.length).toBeGreaterThan(0);
    for (const v of f.encoding) {
      const bytes = fromBase64Url(v.plaintext);
      expect(bytes[0]).toBe(0xff);
      expect(fromUtf8(bytes.subarray(1))).toBe(canonicalize({ type: 'bil.content.v1', ...v.content } as never));
      expect(toBase64Url(encodeContent(v.content))).toBe(v.plaintext);
      expect(decodeContent(bytes)).toEqual(v.content);
    }
    for (const v of f.decoding) expect(decodeContent(fromBase64Url(v.plaintext))).toEqual(v.decoded);
  });
});
