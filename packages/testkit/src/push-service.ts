// A real Web Push service for tests: an HTTPS server on 127.0.0.1 with a
// self-signed certificate for "localhost" (made with the openssl command; the
// process that sends pushes trusts it through NODE_EXTRA_CA_CERTS=caFile). It
// records every push (headers and encrypted body) per subscription and answers
// 201, or what a test scripts (410 for a subscription that expired). Each
// subscription is made as a browser makes one (a P-256 key pair and a 16-byte
// auth secret), and `decrypt` opens a push with its private key exactly as
// RFC 8291 (Web Push message encryption) on RFC 8188 (aes128gcm) says.
import { createDecipheriv, createECDH, hkdfSync, randomBytes, randomUUID, type ECDH } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ReceivedPush {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface TestPushSubscription {
  /** The browser's `PushSubscription.toJSON()`. */
  json: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
  /** The pushes the service received for it so far. */
  received(): ReceivedPush[];
  /** Answer further pushes with this status (201 by default). */
  answer(status: number): void;
  /** Decrypts a push's body with the subscription's private key (RFC 8291). */
  decrypt(body: Buffer): Buffer;
}

export class TestPushService {
  private readonly pushes = new Map<string, ReceivedPush[]>();
  private readonly answers = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    private readonly dir: string,
    /** PEM of the certificate: pass its path as NODE_EXTRA_CA_CERTS to the sender. */
    readonly caFile: string,
    readonly port: number,
  ) {}

  static async start(): Promise<TestPushService> {
    const dir = mkdtempSync(join(tmpdir(), 'bil-push-'));
    const keyFile = join(dir, 'key.pem');
    const caFile = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', keyFile, '-out', caFile,
    ], { stdio: 'ignore' });
    const holder: { self?: TestPushService } = {};
    const server = createServer({ key: readFileSync(keyFile), cert: readFileSync(caFile) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = (req.url ?? '').replace(/^\/push\//, '');
        const self = holder.self!;
        const list = self.pushes.get(id);
        if (req.method !== 'POST' || !list) {
          res.writeHead(404).end();
          return;
        }
        list.push({ headers: { ...req.headers }, body: Buffer.concat(chunks) });
        res.writeHead(self.answers.get(id) ?? 201).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.self = new TestPushService(server, dir, caFile, (server.address() as AddressInfo).port);
    return holder.self;
  }

  /** A new browser subscription on this service (endpoint https://localhost:port/push/<id>). */
  subscribe(): TestPushSubscription {
    const id = randomUUID();
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.pushes.set(id, []);
    return {
      json: { endpoint: `https://localhost:${this.port}/push/${id}`, expirationTime: null, keys: { p256dh: ecdh.getPublicKey('base64url'), auth: auth.toString('base64url') } },
      received: () => [...(this.pushes.get(id) ?? [])],
      answer: (status) => void this.answers.set(id, status),
      decrypt: (body) => decryptWebPush(body, ecdh, auth),
    };
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * RFC 8291 §3.4 + RFC 8188 §2: the body is salt (16) | record size (4) |
 * key id length (1) | key id = the sender's ephemeral public key (65) |
 * one record of AES-128-GCM ciphertext and tag, whose plaintext ends with
 * the last-record delimiter 0x02 and optional zero padding.
 */
export function decryptWebPush(body: Buffer, receiver: ECDH, authSecret: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idLength = body[20]!;
  const senderPublic = body.subarray(21, 21 + idLength);
  const record = body.subarray(21 + idLength);
  if (idLength !== 65 || record.length > rs) throw new Error('not a single-record aes128gcm push');
  const ecdhSecret = receiver.computeSecret(senderPublic);
  // RFC 8291 §3.3: IKM from the ECDH secret, keyed by the auth secret, bound to both public keys.
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), receiver.getPublicKey(), senderPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, authSecret, keyInfo, 32));
  // RFC 8188 §2.2 and §2.3: the content-encryption key and the nonce (record 0: sequence number 0).
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('no last-record delimiter');
  return padded.subarray(0, end);
}
