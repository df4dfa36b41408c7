// npm run bench:attachments -w @bil/bench [-- --mb=N]
// Attachment throughput through the real gateway (the project as npm start
// runs it, stack.ts) against a raw copy of the same bytes:
//   crypto only    encryptAttachment / decryptAttachment in memory (no I/O)
//   raw HTTP       the same ciphertext PUT to and GET from a bare node:http server that only counts bytes
//   project        client.attachments.upload / download: SDK → gateway → chat BlobService → PostgreSQL
// Prints MB/s per line and the project's ratio to raw HTTP.
import { createServer } from 'node:http';
import { attachmentCiphertextSize, decryptAttachment, encryptAttachment } from '@bil/crypto';
import { BilClient, MemoryKeyStore } from '@bil/sdk/node';
import { runTag } from './clients.js';
import { startStacks } from './stack.js';

const mb = Number(process.argv.find((a) => a.startsWith('--mb='))?.slice(5) ?? 50);
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
const rows: Array<[string, number, number]> = [];

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
  const segment = new Uint8Array(4 * 1024 * 1024);
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

// 3. The project.
log('bench: starting the project (npm start on a private database)…');
const stack = await startStacks(log);
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
  rows.push(['project: SDK → gateway → chat → PostgreSQL', rate(size, up.ms), rate(size, down.ms)]);
} finally {
  await stack.stop();
}

const rawRow = rows[1]!;
console.log(`\nAttachment throughput, ${mb} MB file (${ctSize} ciphertext bytes), MB/s of plaintext\n`);
console.log('| path | upload MB/s | download MB/s |');
console.log('|---|---:|---:|');
for (const [label, u, d] of rows) console.log(`| ${label} | ${u.toFixed(1)} | ${d.toFixed(1)} |`);
const project = rows[2]!;
console.log(`\nproject / raw HTTP: upload ${(project[1] / rawRow[1]).toFixed(2)}×, download ${(project[2] / rawRow[2]).toFixed(2)}×`);
