// Test-only helpers: identity events published exactly as identity publishes
// them (its own mapping), and structurally valid envelopes and signed epoch
// records as protocol.md specifies (random bytes where the server can't tell):
// envelope header v2, epoch record v2 (with encrypted-looking `metadata`) and
// signed leaves, as the step 8 wire formats fix them (/work/step8-spec.md).
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { Database, EVENT_ID_HEADER, EVENT_TYPE_HEADER, ensureStream, newHeaders, type Nats, type Sql, type StoredEvent } from '@bil/runtime';
import { createTestEnv } from '@bil/testkit';
import { migrations } from './infra/migrations/index.js';
import { identityIntegrationEvent } from '@bil/identity/integration-events';
import { canonicalize } from '@bil/crypto/protocol';

export interface TestDevice {
  userId: string;
  deviceId: string;
  signingKey: string;
  privateKey: KeyObject;
}

export interface TestUser {
  userId: string;
  identityKey: string;
  devices: TestDevice[];
}

export const b64 = (n: number) => randomBytes(n).toString('base64url');

/** A migrated chat schema in a database of its own; `close` drops it. */
export async function openChatDb(name: string, poolMax = 4): Promise<{ db: Database; close: () => Promise<void> }> {
  const env = await createTestEnv(name);
  const db = await Database.connect({ url: env.databaseUrl, schema: 'chat', migrations, poolMax });
  await db.migrate();
  return {
    db,
    close: async () => {
      await db.close();
      await env.cleanup();
    },
  };
}

/** An app actor of a test device, in a session of its own. */
export const actorOf = (d: TestDevice) => ({ userId: d.userId, deviceId: d.deviceId, sessionId: randomUUID() });

/** `n` users of one device each, written into chat's directory as the identity consumer fills it (no NATS). */
export async function seedDirectory(db: Sql, n: number): Promise<TestUser[]> {
  const users: TestUser[] = Array.from({ length: n }, () => {
    const userId = randomUUID();
    return { userId, identityKey: b64(32), devices: [newDevice(userId)] };
  });
  await db.query(`INSERT INTO chat.directory_users (user_id, status) SELECT x.user_id, 'active' FROM jsonb_to_recordset(?::jsonb) AS x(user_id uuid)`, [
    JSON.stringify(users.map((u) => ({ user_id: u.userId }))),
  ]);
  await db.query(
    `INSERT INTO chat.directory_devices (device_id, user_id, signing_key, status, registered_at)
     SELECT x.device_id, x.user_id, x.signing_key, 'active', now() FROM jsonb_to_recordset(?::jsonb) AS x(device_id uuid, user_id uuid, signing_key text)`,
    [JSON.stringify(users.map((u) => ({ device_id: u.devices[0]!.deviceId, user_id: u.userId, signing_key: u.devices[0]!.signingKey })))],
  );
  return users;
}

/** Publishes one identity event the way identity's outbox relay does. */
export async function publishIdentity(nats: Nats, type: string, data: Record<string, unknown>): Promise<void> {
  await ensureStream(nats, 'identity');
  const eventId = randomUUID();
  const stored = { position: '1', txId: '1', eventId, streamId: 'x', streamVersion: 1, type, data, metadata: {}, occurredAt: new Date().toISOString() } as StoredEvent;
  const msg = identityIntegrationEvent(nats.prefix, stored);
  if (!msg) throw new Error(`identity does not publish ${type}`);
  await nats.js.publish(msg.subject, JSON.stringify(msg.payload), {
    msgID: eventId,
    headers: newHeaders({ [EVENT_ID_HEADER]: eventId, [EVENT_TYPE_HEADER]: type }),
  });
}

export function newDevice(userId: string): TestDevice {
  const kp = generateKeyPairSync('ed25519');
  return { userId, deviceId: randomUUID(), signingKey: kp.publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url'), privateKey: kp.privateKey };
}

export async function registerDevice(nats: Nats, user: TestUser): Promise<TestDevice> {
  const d = newDevice(user.userId);
  user.devices.push(d);
  await publishIdentity(nats, 'DeviceRegistered', {
    deviceId: d.deviceId,
    userId: user.userId,
    name: 'test',
    encryptionKey: b64(400),
    signingKey: d.signingKey,
    certificate: b64(64),
    certificateIssuedAt: 1,
    occurredAt: new Date().toISOString(),
  });
  return d;
}

/** A user with `devices` devices, as identity would announce them. */
export async function registerUser(nats: Nats, devices = 1): Promise<TestUser> {
  const user: TestUser = { userId: randomUUID(), identityKey: b64(32), devices: [] };
  await publishIdentity(nats, 'UserRegistered', {
    userId: user.userId,
    username: `u${user.userId.slice(0, 8)}`,
    displayName: '',
    passwordHash: 'x',
    occurredAt: new Date().toISOString(),
  });
  for (let i = 0; i < devices; i++) await registerDevice(nats, user);
  return user;
}

export async function revokeDevice(nats: Nats, user: TestUser, device: TestDevice): Promise<void> {
  user.devices = user.devices.filter((d) => d.deviceId !== device.deviceId);
  await publishIdentity(nats, 'DeviceRevoked', { deviceId: device.deviceId, userId: user.userId, reason: 'user', occurredAt: new Date().toISOString() });
}

/** A signed epoch record v2 listing these members' current devices, and one wrapped key per device. */
export function epochRecord(
  chatId: string,
  epoch: number,
  prevHash: string,
  members: Array<{ user: TestUser; admin: boolean }>,
  signer: TestDevice,
): { record: string; hash: string; keys: Array<{ deviceId: string; wrappedKey: string }> } {
  const payload = {
    type: 'bil.group-epoch.v2',
    chat_id: chatId,
    epoch,
    prev_hash: prevHash,
    members: [...members]
      .sort((a, b) => (a.user.userId < b.user.userId ? -1 : 1))
      .map(({ user, admin }) => ({
        user_id: user.userId,
        role: admin ? 'admin' : 'member',
        identity_key: user.identityKey,
        devices: [...user.devices]
          .sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1))
          .map((d) => ({ device_id: d.deviceId, encryption_key: b64(400), signing_key: d.signingKey, issued_at: 1, certificate: b64(64) })),
      })),
    key_commitment: b64(32),
    signer_user_id: signer.userId,
    signer_device_id: signer.deviceId,
    created_at: Date.now(),
    // nonce(12) ‖ AES-256-GCM ciphertext of {"title": …} ‖ tag(16): random bytes of that size, the server never opens it.
    metadata: b64(12 + 24 + 16),
  };
  const signature = sign(null, Buffer.from(canonicalize(payload), 'utf8'), signer.privateKey).toString('base64url');
  const hash = createHash('sha256').update(canonicalize({ payload, signature }), 'utf8').digest('base64url');
  const keys = members.flatMap(({ user }) => user.devices.map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })));
  return { record: JSON.stringify({ payload, signature }), hash, keys };
}

/**
 * A structurally valid envelope, header v2 (the server never decrypts).
 * `epochHash`: group, the record hash of `epoch`; `recipientUserId`: direct,
 * the other user. Both "" when not given.
 */
export function envelope(opts: {
  chatId: string;
  messageId: string;
  sender: TestDevice;
  scheme: 'direct' | 'group';
  epoch: number;
  epochHash?: string;
  recipientUserId?: string;
  ciphertextBytes?: number;
}): string {
  return JSON.stringify({
    header: {
      v: 2,
      suite: 'aes-256-gcm',
      chat_id: opts.chatId,
      message_id: opts.messageId,
      sender_user_id: opts.sender.userId,
      sender_device_id: opts.sender.deviceId,
      scheme: opts.scheme,
      epoch: opts.epoch,
      epoch_hash: opts.epochHash ?? '',
      recipient_user_id: opts.recipientUserId ?? '',
      counter: 1,
      timestamp: Date.now(),
      nonce: b64(12),
      commitment: b64(32),
    },
    ciphertext: b64(opts.ciphertextBytes ?? 272),
    signature: b64(64),
  });
}

/** A signed leave (bil.group-leave.v1) of `device` from a group, naming the epoch it had verified by its hash. */
export function signedLeave(chatId: string, device: TestDevice, epoch: number, epochHash: string, over: Record<string, unknown> = {}): string {
  const payload = {
    type: 'bil.group-leave.v1',
    chat_id: chatId,
    user_id: device.userId,
    device_id: device.deviceId,
    epoch,
    epoch_hash: epochHash,
    created_at: Date.now(),
    ...over,
  };
  const signature = sign(null, Buffer.from(canonicalize(payload), 'utf8'), device.privateKey).toString('base64url');
  return JSON.stringify({ payload, signature });
}

export { uuidv7 } from '@bil/testkit';
