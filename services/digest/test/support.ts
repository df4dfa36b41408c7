// Test harness: a private database, Redis prefix and NATS prefix
// (createTestEnv), the API process in-process, identity and chat events
// published exactly as those services publish them (their own mappings), real
// device keys and sealing, log capture, and the plaintext scan.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import {
  createAccountIdentity,
  exportDevicePublicKeys,
  generateDeviceKeys,
  openSealedPayload,
  sealKeyId,
  sealPayload,
  toBase64Url,
  useNodeCrypto,
  verifyServiceKey,
  type DeviceKeyPair,
} from '@bil/crypto/node';
import { createTestEnv, eventually, type Conversation, type TestEnv } from '@bil/testkit';
import { REQUEST_KIND, RESULT_KIND, digestContext, encodeTranscript, type Transcript } from '@bil/summarizer';
import { AppError, EVENT_ID_HEADER, EVENT_TYPE_HEADER, ensureStream, newHeaders, type Nats, type StoredEvent } from '@bil/runtime';
import { Redis } from 'ioredis';
import { identityIntegrationEvent } from '@bil/identity/integration-events';
import { chatIntegrationEvent } from '@bil/chat/integration-events';
import { loadDigestConfig, type DigestConfig } from '../src/config.js';
import { openCore, startApi, type Api, type Core } from '../src/system.js';
import type { Actor } from '../src/app/digest-app.js';

/** A phrase that appears in transcripts only: it must never be found at rest or in logs. */
export const MARKER = 'zebra-marmalade-4417';

export interface CapturedLogs {
  logger: Logger;
  lines: string[];
}

/** A pino logger like runtime's createLogger (same redaction), writing into memory at debug level. */
export function captureLogs(service = 'digest'): CapturedLogs {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = pino({ name: service, level: 'debug', base: { service }, redact: { paths: ['secret', '*.secret', 'ciphertext', '*.ciphertext'], censor: '[redacted]' } }, sink);
  return { logger, lines };
}

export interface Harness {
  env: TestEnv;
  config: DigestConfig;
  logs: CapturedLogs;
  core: Core;
  api: Api;
  nats: Nats;
  /** A config for workers with some settings changed. */
  workerConfig(overrides?: Record<string, string>): DigestConfig;
  close(): Promise<void>;
}

export const TEST_SETTINGS: Record<string, string> = {
  DIGEST_GRPC_HOST: '127.0.0.1',
  DIGEST_GRPC_PORT: '0',
  DIGEST_JOB_LOCK_MS: '2000',
  DIGEST_STALLED_INTERVAL_MS: '500',
  DIGEST_JOB_BACKOFF_MS: '50',
  DIGEST_SWEEP_INTERVAL_MS: '3600000',
};

export async function startHarness(label: string, overrides: Record<string, string> = {}): Promise<Harness> {
  useNodeCrypto();
  const env = await createTestEnv(label);
  const base = { ...env.serviceEnv, ...TEST_SETTINGS, ...overrides };
  const config = loadDigestConfig(base);
  const logs = captureLogs();
  const core = await openCore(config, logs.logger, { migrate: true });
  const api = await startApi(config, logs.logger, core, { grpcPort: 0 });
  return {
    env,
    config,
    logs,
    core,
    api,
    nats: api.nats,
    workerConfig: (o = {}) => loadDigestConfig({ ...base, ...o }),
    close: async () => {
      await api.stop();
      await core.close();
      await env.cleanup();
    },
  };
}

async function publish(nats: Nats, context: 'identity' | 'chat', type: string, data: Record<string, unknown>): Promise<void> {
  await ensureStream(nats, context);
  const eventId = randomUUID();
  const stored = { position: '1', txId: '1', eventId, streamId: 'x', streamVersion: 1, type, data, metadata: {}, occurredAt: new Date().toISOString() } as StoredEvent;
  const msg = context === 'identity' ? identityIntegrationEvent(nats.prefix, stored) : chatIntegrationEvent(nats.prefix, stored);
  if (!msg) throw new Error(`${context} does not publish ${type}`);
  await nats.js.publish(msg.subject, JSON.stringify(msg.payload), { msgID: eventId, headers: newHeaders({ [EVENT_ID_HEADER]: eventId, [EVENT_TYPE_HEADER]: type }) });
}

export interface TestUser {
  name: string;
  userId: string;
  deviceId: string;
  keys: DeviceKeyPair;
  actor: Actor;
}

/** A user with one device whose keys and certificate are real, announced as identity does. */
export async function newUser(h: Harness, name: string): Promise<TestUser> {
  const userId = randomUUID();
  const deviceId = randomUUID();
  const keys = await generateDeviceKeys();
  const now = new Date().toISOString();
  const { identity, certificate } = createAccountIdentity({ userId, device: exportDevicePublicKeys(keys), issuedAt: Date.now() });
  await publish(h.nats, 'identity', 'UserRegistered', { userId, username: name.toLowerCase(), displayName: name, passwordHash: 'x', occurredAt: now });
  await publish(h.nats, 'identity', 'IdentityKeySet', { userId, identityKey: toBase64Url(identity.publicKey), reset: false, occurredAt: now });
  await publish(h.nats, 'identity', 'DeviceRegistered', {
    deviceId,
    userId,
    name: 'laptop',
    encryptionKey: certificate.encryption_key,
    signingKey: certificate.signing_key,
    certificate: certificate.certificate,
    certificateIssuedAt: certificate.issued_at,
    occurredAt: now,
  });
  await eventually(async () => (await h.core.db.query(`SELECT 1 FROM digest.directory_devices d JOIN digest.directory_users u USING (user_id) WHERE device_id = ? AND u.identity_key <> ''`, [deviceId])).length > 0);
  return { name, userId, deviceId, keys, actor: { userId, deviceId, sessionId: randomUUID() } };
}

/** Display name → user id, for a conversation fixture whose speakers are these users. */
export const userIdsOf = (...users: TestUser[]): Record<string, string> => Object.fromEntries(users.map((u) => [u.name, u.userId]));

/** A group announced as chat does; resolves once the digest service knows its members. */
export async function newChat(h: Harness, members: TestUser[], title = 'Team'): Promise<string> {
  const chatId = randomUUID();
  await publish(h.nats, 'chat', 'ChatCreated', {
    chatId,
    chatType: 'group',
    title,
    createdBy: members[0]!.userId,
    members: members.map((m, i) => ({ userId: m.userId, role: i === 0 ? 'owner' : 'member' })),
    occurredAt: new Date().toISOString(),
  });
  await eventually(async () => (await h.core.db.query(`SELECT 1 FROM digest.chat_members WHERE chat_id = ?`, [chatId])).length === members.length);
  return chatId;
}

export async function removeMember(h: Harness, chatId: string, user: TestUser): Promise<void> {
  await publish(h.nats, 'chat', 'MemberRemoved', { chatId, userId: user.userId, removedBy: user.userId, reason: 'left', leftSeq: 10, occurredAt: new Date().toISOString() });
  await eventually(async () => (await h.core.db.query(`SELECT 1 FROM digest.chat_members WHERE chat_id = ? AND user_id = ?`, [chatId, user.userId])).length === 0);
}

/** The transcript v2 a client builds for this request, chat and device; the range is the conversation's first to last seq unless given. */
export function transcriptFor(user: TestUser, requestId: string, chatId: string, c: Conversation, range: { fromSeq?: number; toSeq?: number } = {}): Transcript {
  return {
    requestId,
    chatId,
    deviceId: user.deviceId,
    title: c.title,
    fromSeq: range.fromSeq ?? c.messages[0]?.seq ?? 0,
    toSeq: range.toSeq ?? c.messages[c.messages.length - 1]?.seq ?? 0,
    messages: c.messages,
  };
}

export interface SealOptions {
  /** Seal these bytes instead of the encoded transcript (e.g. a v1 plaintext). */
  plaintext?: Uint8Array;
  /** The sealed-box context (default digestContext of the transcript's request, chat and device). */
  context?: string;
  pinnedIdentityKey?: string;
}

/** What a client does: verify the published key against the pinned identity key, seal the transcript to it with the request's context, signed by its device. */
export async function sealTranscript(h: Harness, user: TestUser, transcript: Transcript, options: SealOptions = {}): Promise<string> {
  const { key } = await h.api.app.getKey();
  const to = await verifyServiceKey(JSON.parse(key.signedKey), { identityKey: options.pinnedIdentityKey ?? h.core.keys.identityKey, service: 'digest', now: Date.now() });
  const box = await sealPayload({
    to,
    kind: REQUEST_KIND,
    context: options.context ?? digestContext(transcript.requestId, transcript.chatId, transcript.deviceId),
    createdAt: Date.now(),
    plaintext: options.plaintext ?? encodeTranscript(transcript),
    signer: user.keys.signing,
  });
  return JSON.stringify(box);
}

/** Builds the transcript of `c` for this request and seals it: `{chatId, sealed}` as RequestDigest takes it. */
export async function sealed(h: Harness, user: TestUser, requestId: string, chatId: string, c: Conversation, options: SealOptions = {}): Promise<{ chatId: string; sealed: string }> {
  return { chatId, sealed: await sealTranscript(h, user, transcriptFor(user, requestId, chatId, c), options) };
}

/** The sealed result's plaintext bytes, opened as the requesting device does: this request's context, signed by the pinned service identity key. */
export async function openResultBytes(h: Harness, user: TestUser, requestId: string, chatId: string, sealedResult: string): Promise<Uint8Array> {
  const { plaintext } = await openSealedPayload(JSON.parse(sealedResult), {
    privateKey: user.keys.encryption.privateKey,
    keyId: await sealKeyId(user.keys.encryption.spki),
    kind: RESULT_KIND,
    context: digestContext(requestId, chatId, user.deviceId),
    signerKey: h.core.keys.identityKey,
  });
  return plaintext;
}

/** The sealed result's plaintext as JSON. */
export async function openResult(h: Harness, user: TestUser, requestId: string, chatId: string, sealedResult: string): Promise<Record<string, unknown>> {
  return JSON.parse(new TextDecoder().decode(await openResultBytes(h, user, requestId, chatId, sealedResult))) as Record<string, unknown>;
}

export async function waitForStatus(h: Harness, user: TestUser, requestId: string, status: string, timeoutMs = 15_000) {
  return eventually(async () => {
    const d = await h.api.app.getDigest(user.actor, requestId);
    return d.status === status ? d : undefined;
  }, timeoutMs, 50);
}

/** Every place plaintext could end up: all tables of the digest schema, every Redis key under the test prefix (BullMQ's included), the captured logs. */
export async function findMarker(h: Harness, marker = MARKER): Promise<string[]> {
  const found: string[] = [];
  const tables = await h.core.db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'digest'`);
  for (const { table_name } of tables) {
    const rows = await h.core.db.query<{ t: string }>(`SELECT t::text AS t FROM digest."${table_name}" t`);
    if (rows.some((r) => r.t.includes(marker))) found.push(`postgres digest.${table_name}`);
  }
  const redis = new Redis(h.env.redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${h.env.redisPrefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        const value =
          type === 'string'
            ? await redis.get(key)
            : type === 'hash'
              ? JSON.stringify(await redis.hgetall(key))
              : type === 'list'
                ? JSON.stringify(await redis.lrange(key, 0, -1))
                : type === 'set'
                  ? JSON.stringify(await redis.smembers(key))
                  : type === 'zset'
                    ? JSON.stringify(await redis.zrange(key, 0, -1))
                    : type === 'stream'
                      ? JSON.stringify(await redis.xrange(key, '-', '+'))
                      : '';
        if (value?.includes(marker)) found.push(`redis ${key}`);
      }
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  if (h.logs.lines.some((l) => l.includes(marker))) found.push('logs');
  return found;
}

/** How many keys BullMQ holds under the test prefix (to show the scan saw the queue). */
export async function bullKeys(h: Harness): Promise<string[]> {
  const redis = new Redis(h.env.redisUrl);
  try {
    return await redis.keys(`${h.env.redisPrefix}bull:*`);
  } finally {
    redis.disconnect();
  }
}

/** The AppError a call was refused with (fails the test when it succeeds or throws something else). */
export async function refusal(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof AppError) return err;
  throw err ?? new Error('expected a refusal');
}
