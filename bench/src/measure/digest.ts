// 6. digest jobs/s end to end vs the crypto-bound rate of one job.
//
// End to end: readers made by the SDK, each with a personal chat holding a
// real conversation (launchPlanning, ~30 messages sent by the SDK). Each
// request is made by the SDK itself (client.digest: it decrypts the unread
// messages, builds the transcript v2 and seals it to the digest key, signed by
// the device, for its own request id) BEFORE the clock starts: the SDK's
// POST /v1/digests is held back (its body kept, the call ended), as
// services/digest/bench/jobs.bench.ts seals before its clock in-process. Then
// the clock starts, every held request is posted through the gateway at once,
// and jobs/s is the requests divided by the time until the last one is settled
// (digest.digests.completed_at, read from the project's database). npm start
// runs the digest worker with the built-in extractive summariser (no model).
//
// Crypto-bound: what one worker job costs in crypto, timed in-process one job
// after another on the backend the worker runs (node:crypto, as
// services/digest/src/main.ts installs it): verify the device certificate,
// open the sealed transcript (Ed25519 verify, RSA-OAEP-3072 unwrap, AEAD),
// hash it, seal the summary to the device (RSA-OAEP wrap, AEAD, Ed25519 sign)
// and hash the sealed result. 1 / that time is the rate a worker would reach
// if crypto were all it did.
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  createAccountIdentity,
  exportDevicePublicKeys,
  generateDeviceKeys,
  generateIdentityKey,
  importEncryptionPrivateKey,
  openSealedPayload,
  sealKeyId,
  sealPayload,
  sealRecipientForDevice,
  setCryptoBackend,
  signServiceKey,
  toBase64Url,
  useNodeCrypto,
  verifyDevice,
  verifyServiceKey,
} from '@bil/crypto/node';
import { BilClient } from '@bil/sdk';
import { REQUEST_KIND, RESULT_KIND, digestContext, encodeSummary, encodeTranscript, summarizeExtractive, transcriptSha256 } from '@bil/summarizer';
import { launchPlanning } from '@bil/testkit';
import { makeUser, makeUsers, pool, post, type User } from '../clients.js';
import { sleep, type Ctx, type Outcome } from '../context.js';
import { cpuDelta, sampleCpu } from '../proc.js';
import { fmt, ratio, summarise } from '../stats.js';

const HELD = 'bench: request held until the clock starts';

interface Held {
  requestId: string;
  token: string;
  body: string;
}

/** A reader whose SDK client holds its POST /v1/digests back, and the chat it digests. */
async function reader(ctx: Ctx, serviceIdentityKey: string, sender: User, user: User): Promise<{ user: User; chatId: string; held: Held[]; client: BilClient }> {
  const { stack } = ctx;
  const chatId = (await retried(() => sender.client.chats.createPersonal(user.userId))).chatId;
  for (const m of launchPlanning().messages) await sender.client.messages.send(chatId, m.text);
  const held: Held[] = [];
  const capture: typeof fetch = async (input, init) => {
    if (init?.method === 'POST' && String(input).endsWith('/v1/digests') && typeof init.body === 'string') {
      const body = init.body;
      held.push({ requestId: (JSON.parse(body) as { request_id: string }).request_id, token: user.token, body });
      throw new Error(HELD);
    }
    return fetch(input, init);
  };
  const client = new BilClient({ baseUrl: stack.baseUrl, keyStore: user.store, fetch: capture, timeoutMs: 120_000, digest: { serviceIdentityKey, minUnread: 1 } });
  return { user, chatId, held, client };
}

/** Retries while the services learn of new accounts and chats (their directories follow events). */
async function retried<T>(fn: () => Promise<T>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await sleep(200);
    }
  }
}

/** The SDK makes one request (decrypts, builds, seals); its POST is held, not sent. */
async function prepare(r: Awaited<ReturnType<typeof reader>>): Promise<void> {
  const before = r.held.length;
  let outcome: unknown;
  try {
    outcome = await r.client.digest([r.chatId], { confirm: () => true });
  } catch (err) {
    if (r.held.length === before) throw err;
    return;
  }
  throw new Error(`the SDK settled a digest without posting it: ${JSON.stringify(outcome).slice(0, 300)}`);
}

/** One worker job's crypto, `n` jobs one after another on the node:crypto backend; ms per job. */
async function cryptoPerJob(n: number): Promise<{ cryptoMs: number; summariseMs: number }> {
  const previous = useNodeCrypto();
  try {
    // The service: identity key and an RSA-OAEP-3072 digest key made as its KeyRing makes them.
    const service = generateIdentityKey();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 3072, publicExponent: 0x10001, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } });
    const spki = new Uint8Array(rsa.publicKey);
    const keyId = await sealKeyId(spki);
    const privateKey = await importEncryptionPrivateKey(new Uint8Array(rsa.privateKey), { extractable: false });
    const now = Date.now();
    const signed = await signServiceKey({ identity: service, service: 'digest', encryptionKey: spki, issuedAt: now, expiresAt: now + 86_400_000 });
    const to = await verifyServiceKey(signed, { identityKey: toBase64Url(service.publicKey), service: 'digest', now });
    // The requesting device, as the directory lists it.
    const keys = await generateDeviceKeys();
    const userId = randomUUID();
    const deviceId = randomUUID();
    const { identity, certificate } = createAccountIdentity({ userId, device: exportDevicePublicKeys(keys), issuedAt: now });
    const record = { ...certificate, device_id: deviceId, identity_key: toBase64Url(identity.publicKey) };
    // Requests sealed by the client beforehand (client cost).
    const conversation = launchPlanning();
    const jobs = await Promise.all(
      Array.from({ length: n + 5 }, async () => {
        const requestId = randomUUID();
        const chatId = randomUUID();
        const transcript = { requestId, chatId, deviceId, title: conversation.title, fromSeq: 1, toSeq: conversation.messages.length, messages: conversation.messages };
        const box = await sealPayload({ to, kind: REQUEST_KIND, context: digestContext(requestId, chatId, deviceId), createdAt: now, plaintext: encodeTranscript(transcript), signer: keys.signing });
        return { requestId, chatId, sealed: JSON.stringify(box), transcript };
      }),
    );
    const summary = summarizeExtractive(jobs[0]!.transcript);
    const job = async (j: (typeof jobs)[number]) => {
      const device = await verifyDevice(record, record.identity_key);
      const recipient = await sealRecipientForDevice(device);
      const { plaintext } = await openSealedPayload(JSON.parse(j.sealed), { privateKey, keyId, kind: REQUEST_KIND, context: digestContext(j.requestId, j.chatId, deviceId), signerKey: certificate.signing_key });
      const hash = await transcriptSha256(plaintext);
      const out = encodeSummary({ requestId: j.requestId, chatId: j.chatId, deviceId, transcriptSha256: hash, fromSeq: 1, toSeq: j.transcript.toSeq, messageCount: j.transcript.messages.length, excludedCount: 0, ...summary });
      const sealed = await sealPayload({ to: recipient, kind: RESULT_KIND, context: digestContext(j.requestId, j.chatId, deviceId), createdAt: Date.now(), plaintext: out, signer: service });
      createHash('sha256').update(JSON.stringify(sealed)).digest('base64url');
    };
    for (const j of jobs.slice(0, 5)) await job(j); // warm-up
    const t0 = performance.now();
    for (const j of jobs.slice(5)) await job(j);
    const cryptoMs = (performance.now() - t0) / n;
    const s0 = performance.now();
    for (const j of jobs.slice(5)) summarizeExtractive(j.transcript);
    return { cryptoMs, summariseMs: (performance.now() - s0) / n };
  } finally {
    setCryptoBackend(previous);
  }
}

export async function digest(ctx: Ctx): Promise<Outcome> {
  const { stack } = ctx;
  const readers = ctx.quick ? 5 : 10;
  const requests = ctx.quick ? 150 : 400; // under DIGEST_DAILY_CAP (100 chats per user per day) with one chat per request
  const perReader = Math.ceil(requests / readers);

  // The service identity key the operator publishes (start.mjs prints it; the gateway serves it with the key).
  const someone = await makeUser(stack.baseUrl);
  const keyRes = await fetch(`${stack.baseUrl}/v1/digest/key`, { headers: { authorization: `Bearer ${someone.token}` } });
  const serviceIdentityKey = ((await keyRes.json()) as { service_identity_key: string }).service_identity_key;
  ctx.log(`digest: ${readers} readers with a ${launchPlanning().messages.length}-message chat each; the SDK seals ${perReader * readers} requests before the clock`);
  const users = await makeUsers(stack.baseUrl, 2 * readers);
  const rs = await pool(Array.from({ length: readers }), 2, (_, i) => reader(ctx, serviceIdentityKey, users[2 * i]!, users[2 * i + 1]!));
  for (const r of rs) await retried(() => prepare(r)); // the digest service knows the chat and its members
  await pool(
    rs.flatMap((r) => Array.from({ length: perReader - 1 }, () => r)),
    4,
    (r) => prepare(r),
  );
  const held = rs.flatMap((r) => r.held);
  const ids = held.map((h) => h.requestId);

  // The crypto-bound rate is timed just before and just after the end-to-end run (the machine's load drifts): their mean.
  const before = await cryptoPerJob(ctx.quick ? 100 : 300);

  // The clock: every request at once through the gateway, until the last is settled.
  const cpu0 = await sampleCpu(stack.processes);
  const t0 = Date.now();
  const statuses = await Promise.all(held.map((h) => post(`${stack.baseUrl}/v1/digests`, h.token, h.body)));
  const acceptedMs = Date.now() - t0;
  const accepted = statuses.filter((s) => s >= 200 && s < 300).length;
  let rows: Array<{ status: string; completed_at: Date | null; requested_at: Date }> = [];
  for (;;) {
    rows = (
      await stack.db.query<{ status: string; completed_at: Date | null; requested_at: Date }>(
        `SELECT status, completed_at, requested_at FROM digest.digests WHERE request_id = ANY($1::uuid[])`,
        [ids],
      )
    ).rows;
    if (rows.length >= accepted && rows.every((r) => r.status !== 'pending')) break;
    if (Date.now() - t0 > 300_000) throw new Error(`digest: ${rows.filter((r) => r.status !== 'pending').length} of ${accepted} settled in 5 minutes`);
    await sleep(25);
  }
  const cpu = cpuDelta(cpu0, await sampleCpu(stack.processes));
  const last = Math.max(...rows.map((r) => new Date(r.completed_at ?? Date.now()).getTime()));
  const seconds = (last - t0) / 1000;
  const ready = rows.filter((r) => r.status === 'ready').length;
  const failed = rows.length - ready;
  const perSecond = ready / seconds;
  const latency = summarise(rows.map((r) => new Date(r.completed_at!).getTime() - t0));

  const after = await cryptoPerJob(ctx.quick ? 100 : 300);
  const cryptoMs = (before.cryptoMs + after.cryptoMs) / 2;
  const summariseMs = (before.summariseMs + after.summariseMs) / 2;
  const cryptoRate = 1000 / cryptoMs;
  const busy = (name: string) => `${(((cpu[name] ?? 0) / seconds) * 100).toFixed(0)}%`;
  const data = { requests: held.length, accepted, ready, failed, seconds, acceptedMs, perSecond, cryptoMs, cryptoMsBefore: before.cryptoMs, cryptoMsAfter: after.cryptoMs, cryptoRate, summariseMs, latency, cpu };
  ctx.log(`digest: ${JSON.stringify(data)}`);
  return {
    tables: [
      {
        name: 'digest',
        title: 'digest jobs/s vs the crypto-bound rate of one job',
        rawHeader: 'crypto-bound',
        rows: [
          { label: 'jobs/s (all submitted at once, until the last is ready)', project: fmt(perSecond), raw: fmt(cryptoRate), ratio: ratio(perSecond, cryptoRate) },
          { label: 'per job', project: fmt(1000 / perSecond, 'ms'), raw: fmt(cryptoMs, 'ms'), ratio: '—' },
        ],
        notes: [
          `${held.length} requests (1 chat of ${launchPlanning().messages.length} messages each, sealed by the SDK before the clock), ${accepted} accepted in ${fmt(acceptedMs, 'ms')}, ${ready} ready, ${failed} failed; settled p50 ${fmt(latency.p50, 'ms')}, last ${fmt(latency.max, 'ms')} after the first POST.`,
          `crypto-bound: one worker job's crypto timed in-process, one job after another, on node:crypto (the worker's backend), just before and just after the run (${fmt(before.cryptoMs, 'ms')} / ${fmt(after.cryptoMs, 'ms')}; their mean): certificate check, open (Ed25519 verify, RSA-OAEP-3072, AEAD), hash, seal the summary (RSA-OAEP, AEAD, Ed25519 sign), hash; the extractive summariser adds ${fmt(summariseMs, 'ms')} per job.`,
          `busy during the run (CPU / wall): digest-worker ${busy('digest-worker')}, digest ${busy('digest')}, gateway ${busy('gateway')}, postgres ${busy('postgres')}, bench ${busy('bench')}.`,
        ],
      },
    ],
    data,
  };
}
