// npm run bench:attachments [-- --mb=N] [--backend=postgres|s3|both]   (from the root: builds first)
// Attachment throughput through the real gateway (the project as npm start
// runs it, stack.ts) against a raw copy of the same bytes:
//   crypto only    encryptAttachment / decryptAttachment in memory (no I/O)
//   raw HTTP       the same ciphertext PUT to and GET from a bare node:http server that only counts bytes
//   project (postgres)  client.attachments.upload / download: SDK → gateway → chat BlobService → PostgreSQL
//   raw S3         the same ciphertext PUT to and GET from an S3-compatible server (s3rver, started here)
//                  with @aws-sdk/client-s3, in the SDK's 4 MiB segments: the bucket's own speed
//   project (s3)   the same SDK calls with CHAT_BLOB_BACKEND=s3: presigned PUTs/GETs straight to that
//                  bucket, the gateway and chat only sign URLs and count segments
// Prints MB/s per line and each project path's ratio to its raw copy.
import { createServer } from 'node:http';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { attachmentCiphertextSize, decryptAttachment, encryptAttachment } from '@bil/crypto';
import { BilClient, MemoryKeyStore } from '@bil/sdk/node';
import { startTestS3, type TestS3 } from '@bil/testkit';
import { runTag } from './clients.js';
import { startStacks } from './stack.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const mb = Number(arg('mb') ?? 50);
const backend = arg('backend') ?? 'both';
if (!['postgres', 's3', 'both'].includes(backend)) throw new Error('--backend is postgres, s3 or both');
const SEGMENT = 4 * 1024 * 1024;
const size = Math.round(mb * 1000 * 1000);
const PIECE = 256 * 1024;

function* plaintext(): Generator<Uint8Array> {
  const block = new Uint8Array(PIECE).map((_, i) => (i * 31) & 0xff);
  for (let at = 0; at < size; at += PIECE) yield block.subarray(0, Math.min(PIECE, size - at));
}

async function drain(src: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const p of src) n += p.length;
  return n;
}

const rate = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** A server that reads request bodies and answers GETs with `size` bytes, nothing else. */
async function rawServer(): Promise<{ url: string; close(): Promise<void> }> {
  const body = new Uint8Array(PIECE);
  const server = createServer((req, res) => {
    if (req.method === 'PUT') {
      req.on('data', () => undefined).on('end', () => res.end('{}'));
      return;
    }
    const total = Number(new URL(req.url!, 'http://x').searchParams.get('size'));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(PIECE, total - sent);
        sent += n;
        if (!res.write(body.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const ctSize = attachmentCiphertextSize(size);
type Row = [label: string, upload: number, download: number];
const rows: Row[] = [];
/** Each project row's raw counterpart, for the ratios. */
const pairs: Array<[project: Row, raw: Row]> = [];

// 1. Crypto only.
{
  const enc = encryptAttachment(plaintext());
  const parts: Uint8Array[] = [];
  const e = await timed(async () => {
    for await (const p of enc) parts.push(p);
  });
  const sealed = enc.sealed();
  const ref = { key: Buffer.from(sealed.key).toString('base64url'), digest: Buffer.from(sealed.digest).toString('base64url'), size: sealed.size, chunk_size: sealed.chunkSize };
  const d = await timed(() => drain(decryptAttachment(ref, parts)));
  rows.push(['crypto only (AES-256-GCM STREAM + SHA-256)', rate(size, e.ms), rate(size, d.ms)]);
}

// 2. Raw HTTP copy of the same number of ciphertext bytes, in the SDK's 4 MiB segments.
const raw = await rawServer();
{
  const segment = new Uint8Array(SEGMENT);
  const up = await timed(async () => {
    for (let at = 0; at < ctSize; at += segment.length) {
      const r = await fetch(`${raw.url}/put`, { method: 'PUT', body: segment.subarray(0, Math.min(segment.length, ctSize - at)) });
      await r.text();
    }
  });
  const down = await timed(async () => {
    const r = await fetch(`${raw.url}/get?size=${ctSize}`);
    let n = 0;
    for await (const p of r.body as unknown as AsyncIterable<Uint8Array>) n += p.length;
    return n;
  });
  rows.push(['raw HTTP copy (bare node:http, no crypto, no storage)', rate(size, up.ms), rate(size, down.ms)]);
}
await raw.close();

/** The same ciphertext bytes to and from the bucket with the S3 API: 4 MiB objects PUT one after another, then GET in order. */
async function rawS3(bucket: TestS3): Promise<Row> {
  const s3 = new S3Client({
    endpoint: bucket.endpoint,
    region: bucket.region,
    forcePathStyle: true,
    credentials: { accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey },
  });
  try {
    const segment = new Uint8Array(SEGMENT).map((_, i) => (i * 7) & 0xff);
    const keys: string[] = [];
    const up = await timed(async () => {
      for (let at = 0; at < ctSize; at += SEGMENT) {
        const key = `raw/${runTag}/${at}`;
        await s3.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: key, Body: segment.subarray(0, Math.min(SEGMENT, ctSize - at)) }));
        keys.push(key);
      }
    });
    const down = await timed(async () => {
      let n = 0;
      for (const key of keys) {
        const r = await s3.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: key }));
        n += await drain(r.Body as AsyncIterable<Uint8Array>);
      }
      if (n !== ctSize) throw new Error(`raw S3 read ${n} bytes, not ${ctSize}`);
    });
    return ['raw S3 copy (@aws-sdk/client-s3 to s3rver, no crypto)', rate(size, up.ms), rate(size, down.ms)];
  } finally {
    s3.destroy();
  }
}

/** Upload and download one file through the project started with `extra` settings. */
async function project(label: string, extra: Record<string, string>): Promise<Row> {
  log(`bench: starting the project (npm start on a private database) for ${label}…`);
  const stack = await startStacks(log, extra);
  try {
    const alice = new BilClient({ baseUrl: stack.baseUrl, keyStore: new MemoryKeyStore() });
    const bob = new BilClient({ baseUrl: stack.baseUrl, keyStore: new MemoryKeyStore() });
    const password = 'bench password 1234';
    await alice.register({ username: `ba${runTag}`, password, deviceName: 'bench' });
    const bobAccount = await bob.register({ username: `bb${runTag}`, password, deviceName: 'bench' });
    const chat = await alice.chats.createPersonal(bobAccount.userId);
    const up = await timed(() => alice.attachments.upload(chat.chatId, plaintext(), { name: 'bench.bin', mime: 'application/octet-stream', size }));
    const down = await timed(() => drain(alice.attachments.download(up.value)));
    if (down.value !== size) throw new Error(`downloaded ${down.value} bytes, not ${size}`);
    return [label, rate(size, up.ms), rate(size, down.ms)];
  } finally {
    await stack.stop();
  }
}

// 3. The project with PostgreSQL blobs (the default), against the raw HTTP copy.
if (backend !== 's3') pairs.push([await project('project: SDK → gateway → chat → PostgreSQL', {}), rows[1]!]);

// 4. The bucket alone, then the project with the S3 backend and presigned transfers to the same bucket.
if (backend !== 'postgres') {
  const bucket = await startTestS3({ bucket: `bench-${runTag}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 60) });
  try {
    const raw = await rawS3(bucket);
    rows.push(raw);
    const s3Row = await project('project: SDK ⇄ bucket (presigned), gateway → chat sign and count', bucket.chatEnv);
    pairs.push([s3Row, raw]);
  } finally {
    await bucket.stop();
  }
}
for (const [p] of pairs) rows.push(p);

console.log(`\nAttachment throughput, ${mb} MB file (${ctSize} ciphertext bytes), MB/s of plaintext\n`);
console.log('| path | upload MB/s | download MB/s |');
console.log('|---|---:|---:|');
for (const [label, u, d] of rows) console.log(`| ${label} | ${u.toFixed(1)} | ${d.toFixed(1)} |`);
console.log('');
for (const [p, r] of pairs) console.log(`${p[0]} / ${r[0].split(' (')[0]}: upload ${(p[1] / r[1]).toFixed(2)}×, download ${(p[2] / r[2]).toFixed(2)}×`);
