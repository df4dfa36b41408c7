// Test helpers for the gateway e2e tests: device keys and certificates built
// as docs/protocol.md describes (keys and signatures with node:crypto; the
// signed bytes are the protocol's one definition, @bil/crypto/protocol, whose
// output docs/testvectors pins for crypto and the services alike), the
// identity service as a child process, and a small HTTP client.
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEVICE_CERTIFICATE_TYPE, canonicalBytes } from '@bil/crypto/protocol';
import { AppError } from '@bil/runtime';
import type { ChatApi } from '../src/chat-client.js';
import { freePort, spawnNode } from '@bil/testkit';

const b64url = (b: Buffer) => b.toString('base64url');

/** An RSA-OAEP encryption key as registered: SPKI DER, base64url. */
export function rsaPublicKey(bits = 3072): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  return b64url(publicKey.export({ type: 'spki', format: 'der' }));
}

export interface Ed25519Pair {
  privateKey: KeyObject;
  /** Raw 32-byte public key, base64url (the last 32 bytes of its SPKI DER). */
  publicKey: string;
}

export function ed25519(): Ed25519Pair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { privateKey, publicKey: b64url(spki.subarray(spki.length - 32)) };
}

/** Signs a device certificate with the account identity key (docs/protocol.md). */
export function certify(p: {
  identity: Ed25519Pair;
  userId: string;
  encryptionKey: string;
  signingKey: string;
  issuedAt: number;
}): string {
  const payload = canonicalBytes({
    type: DEVICE_CERTIFICATE_TYPE,
    user_id: p.userId,
    identity_key: p.identity.publicKey,
    encryption_key: p.encryptionKey,
    signing_key: p.signingKey,
    issued_at: p.issuedAt,
  });
  return b64url(sign(null, payload, p.identity.privateKey));
}

// RSA key generation is slow; a few pre-made keys serve every device of a run.
const rsaPool: string[] = [];
export function pooledRsaKey(): string {
  if (rsaPool.length < 4) {
    const k = rsaPublicKey();
    rsaPool.push(k);
    return k;
  }
  return rsaPool[Math.floor(Math.random() * rsaPool.length)]!;
}

export interface DeviceRegistration {
  username: string;
  password: string;
  device_name: string;
  encryption_key: string;
  signing_key: string;
  identity_key: string;
  certificate: string;
  certificate_issued_at: number;
  reset_identity?: boolean;
}

/** A valid POST /v1/auth/devices body for `userId`, certified by `identity`. */
export function deviceRegistration(p: {
  username: string;
  password: string;
  userId: string;
  identity: Ed25519Pair;
  deviceName?: string;
  encryptionKey?: string;
  /** The device's Ed25519 key pair, when the test signs with it (e.g. epoch records). */
  signing?: Ed25519Pair;
}): DeviceRegistration {
  const encryptionKey = p.encryptionKey ?? pooledRsaKey();
  const signingKey = (p.signing ?? ed25519()).publicKey;
  const issuedAt = Date.now();
  return {
    username: p.username,
    password: p.password,
    device_name: p.deviceName ?? 'laptop',
    encryption_key: encryptionKey,
    signing_key: signingKey,
    identity_key: p.identity.publicKey,
    certificate: certify({ identity: p.identity, userId: p.userId, encryptionKey, signingKey, issuedAt }),
    certificate_issued_at: issuedAt,
  };
}

export function randomUsername(prefix = 'u'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export { freePort };

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const identityMain = join(repoRoot, 'services', 'identity', 'dist', 'main.js');

export interface IdentityProcess {
  grpcUrl: string;
  /** Everything identity wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts the built identity service and resolves once it logs "identity listening". */
export function startIdentity(env: Record<string, string>, timeoutMs = 60_000): Promise<IdentityProcess> {
  return startServiceProcess('identity', identityMain, 'IDENTITY', env, timeoutMs);
}

export interface HttpResult {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

/** A tiny JSON client for the gateway under test. */
export function httpClient(baseUrl: string) {
  return async function http(
    method: string,
    path: string,
    opts: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpResult> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
}

/**
 * A chat client for suites that don't exercise chat: healthy, and every RPC
 * answers 503 `service_unavailable`.
 */
export function unavailableChat(): ChatApi {
  const down = () => Promise.reject(new AppError('unavailable', 'service_unavailable', 'chat is not part of this test'));
  return {
    createPersonalChat: down,
    createGroup: down,
    getChat: down,
    listChats: down,
    addMembers: down,
    removeMember: down,
    changeRole: down,
    deleteChat: down,
    publishEpoch: down,
    addEpochKeys: down,
    listEpochs: down,
    sendMessage: down,
    listMessages: down,
    markRead: down,
    getUnread: down,
    deleteMessage: down,
    setDisappearingTimer: down,
    checkHealth: async () => undefined,
    close: () => undefined,
  };
}

export const chatMain = join(repoRoot, 'services', 'chat', 'dist', 'main.js');

export interface ChatProcess {
  grpcUrl: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts the built chat service and resolves once it logs "chat listening". */
export function startChat(env: Record<string, string>, timeoutMs = 60_000): Promise<ChatProcess> {
  return startServiceProcess('chat', chatMain, 'CHAT', env, timeoutMs);
}

/**
 * Spawns a built service (`<PREFIX>_GRPC_PORT` and `<PREFIX>_METRICS_PORT` on
 * free ports, migrations applied at start, logs at info) and resolves once it
 * logs "<name> listening".
 */
async function startServiceProcess(
  name: string,
  main: string,
  prefix: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ grpcUrl: string; output(): string; stop(): Promise<void> }> {
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const p = await spawnNode(name, main, {
    env: {
      ...env,
      LOG_LEVEL: 'info',
      [`${prefix}_GRPC_HOST`]: '127.0.0.1',
      [`${prefix}_GRPC_PORT`]: String(grpcPort),
      [`${prefix}_METRICS_PORT`]: String(metricsPort),
      [`${prefix}_MIGRATE_ON_START`]: 'true',
    },
    ready: `${name} listening`,
    timeoutMs,
  });
  return { grpcUrl: `127.0.0.1:${grpcPort}`, output: p.output, stop: p.stop };
}

/**
 * Deadline of the gateway's calls in the e2e tests: generous, because a
 * 2-core CI machine running several suites can take seconds for a scrypt-heavy
 * registration; production keeps its 5 s default.
 */
export const RPC_DEADLINE_MS = 30_000;
