// The digest engine's checks without a server: consents verified against the
// member's verified devices and pinned at the highest version; results opened
// with the request's context, signed by the configured identity, and every
// echoed field of the summary compared with what was sent.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  generateDeviceKeys,
  generateIdentityKey,
  sealPayload,
  signDigestConsent,
  signServiceKey,
  toBase64Url,
  verifyServiceKey,
  type Ed25519KeyPair,
  type LocalDevice,
  type SealRecipient,
  type VerifiedDevice,
} from '@bil/crypto';
import { digestContext, encodeSummary, RESULT_KIND, type DigestSummaryPlain } from '@bil/summarizer';
import { BilApiError, BilStateError } from '../errors.js';
import type { StoredDigestState } from '../key-store.js';
import { ConsentBook } from './consent.js';
import { openResults } from './server.js';
import type { PendingDigest } from './types.js';

const CHAT = '0193f9a8-0000-7000-8000-00000000c0de';
const OTHER_CHAT = '0193f9a8-0000-7000-8000-00000000beef';
const REQUEST = '0193f9a8-0000-7000-8000-0000000000a1';
const OLD_REQUEST = '0193f9a8-0000-7000-8000-0000000000a0';
const uid = (n: number) => `0193f9a8-0000-7000-8000-${String(n).padStart(12, '0')}`;

let me: LocalDevice;
let carol: LocalDevice;
let carolOther: LocalDevice;
let service: Ed25519KeyPair;
let toMe: SealRecipient;

beforeAll(async () => {
  const [a, b, c] = await Promise.all([generateDeviceKeys(), generateDeviceKeys(), generateDeviceKeys()]);
  me = { userId: uid(1), deviceId: uid(11), keys: a };
  carol = { userId: uid(2), deviceId: uid(21), keys: b };
  carolOther = { userId: uid(2), deviceId: uid(22), keys: c };
  service = generateIdentityKey();
  // A recipient for this device's key, as the worker makes one from the directory.
  const issuer = generateIdentityKey();
  const signed = await signServiceKey({ identity: issuer, service: 'test', encryptionKey: a.encryption.spki, issuedAt: 1, expiresAt: 2 ** 40 });
  toMe = await verifyServiceKey(signed, { identityKey: issuer.publicKey, service: 'test', now: 2 });
});

const verifiedOf = (d: LocalDevice) => ({ userId: d.userId, deviceId: d.deviceId, signingKey: toBase64Url(d.keys.signing.publicKey) }) as VerifiedDevice;

describe('consents: verified against the member\'s devices, pinned at the highest version', () => {
  function book(opts: { devices?: LocalDevice[]; put?: (body: unknown) => Promise<unknown> } = {}) {
    let state: StoredDigestState = {};
    const calls: { method: string; path: string; body?: unknown }[] = [];
    const b = new ConsentBook({
      call: async <T,>(method: string, path: string, body?: unknown) => {
        calls.push({ method, path, body });
        if (method === 'PUT') return ((await opts.put?.(body)) ?? {}) as T;
        return { policy: { chat_id: CHAT, enabled: true, consents: [] } } as T;
      },
      me: async () => me,
      devices: async (userId) => ({ devices: (opts.devices ?? [carol, me]).filter((d) => d.userId === userId).map(verifiedOf) }),
      state: async () => state,
      save: async (patch) => {
        state = { ...state, ...patch };
      },
      now: () => 1_764_100_000_000,
    });
    return { book: b, calls, state: () => state };
  }
  const sign = (d: LocalDevice, include: boolean, version: number, chatId = CHAT) => signDigestConsent({ chatId, device: d, include, version, createdAt: version });

  it('pins the highest verified version; a missing or lower statement falls back to the pin', async () => {
    const { book: b, state } = book();
    expect(ConsentBook.excluded(await b.update(CHAT, [sign(carol, true, 5), sign(carol, false, 7)]))).toEqual(new Set([carol.userId]));
    expect(state().consents?.[CHAT]?.[carol.userId]).toEqual({ version: 7, include: false });
    expect(ConsentBook.excluded(await b.update(CHAT, []))).toEqual(new Set([carol.userId]));
    expect(ConsentBook.excluded(await b.update(CHAT, [sign(carol, true, 6)]))).toEqual(new Set([carol.userId]));
    expect(ConsentBook.excluded(await b.update(CHAT, 'nonsense'))).toEqual(new Set([carol.userId]));
    // A newer one counts.
    expect(ConsentBook.excluded(await b.update(CHAT, [sign(carol, true, 8)]))).toEqual(new Set());
  });

  it('ignores statements not signed by a verified device of the member, edited, for another chat, or of users not asked about', async () => {
    const { book: b } = book({ devices: [carol, me] });
    const edited = { ...sign(carol, true, 9), payload: { ...sign(carol, true, 9).payload, include: false } };
    const pins = await b.update(CHAT, [
      sign(carolOther, false, 9), // a device of hers this client did not verify
      edited,
      sign(carol, false, 9, OTHER_CHAT),
      { payload: { user_id: carol.userId }, signature: 'x' },
    ]);
    expect(pins).toEqual({});
    expect(await b.update(CHAT, [sign(carol, false, 9)], new Set([me.userId]))).toEqual({});
  });

  it('setConsent pins its own statement first, then stores it; a stale answer is met once, above the server\'s version', async () => {
    let puts = 0;
    const { book: b, state, calls } = book({
      put: async () => {
        if (++puts === 1) throw new BilApiError({ status: 409, code: 'consent_stale', message: 'stale' });
        return {};
      },
    });
    const res = await b.set(CHAT, false);
    expect(res.include).toBe(false);
    expect(puts).toBe(2);
    const sent = calls.filter((c) => c.method === 'PUT').map((c) => (c.body as { consent: { payload: { version: number; user_id: string } } }).consent.payload);
    expect(sent[1]!.version).toBeGreaterThan(sent[0]!.version);
    expect(sent[0]!.user_id).toBe(me.userId);
    expect(state().consents?.[CHAT]?.[me.userId]).toEqual({ version: res.version, include: false });
  });
});

describe('results: the context, the signer, and every echoed field', () => {
  const pending = (): PendingDigest => ({
    type: 'bil.digest-pending.v1',
    requestId: REQUEST,
    deviceId: me.deviceId,
    serviceIdentityKey: toBase64Url(service.publicKey),
    chats: [{ chatId: CHAT, transcriptSha256: 'h'.repeat(43), fromSeq: 11, toSeq: 40, messageCount: 28, excludedCount: 2 }],
    outcomes: [],
    chatIds: [CHAT],
  });
  const plain = (over: Partial<DigestSummaryPlain> = {}): DigestSummaryPlain => ({
    requestId: REQUEST,
    chatId: CHAT,
    deviceId: me.deviceId,
    transcriptSha256: 'h'.repeat(43),
    fromSeq: 11,
    toSeq: 40,
    messageCount: 25,
    excludedCount: 3,
    topic: 'Launch',
    keyPoints: ['It ships Thursday'],
    actions: [{ owner: 'Bob', action: 'review the page' }],
    language: 'en',
    method: 'extractive',
    ...over,
  });
  async function result(over: Partial<DigestSummaryPlain> = {}, seal: { context?: string; signer?: Ed25519KeyPair; chatId?: string } = {}) {
    const p = plain(over);
    return {
      chat_id: seal.chatId ?? CHAT,
      sealed: await sealPayload({
        to: toMe,
        kind: RESULT_KIND,
        context: seal.context ?? digestContext(p.requestId, p.chatId, p.deviceId),
        createdAt: 1,
        plaintext: encodeSummary(p),
        signer: seal.signer ?? service,
      }),
    };
  }
  const ready = (results: unknown[]) => ({ request_id: REQUEST, status: 'ready' as const, failure_reason: '', results: results as { chat_id: string; sealed: unknown }[] });
  const refused = async (results: unknown[]) => {
    const err = await openResults(me, pending(), ready(results)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BilStateError);
    expect((err as BilStateError).code).toBe('digest_result_untrusted');
  };

  it('an honest result opens: counts from the worker plus those left out here', async () => {
    const [s] = await openResults(me, pending(), ready([await result()]));
    expect(s).toMatchObject({ kind: 'summary', on: 'server', chatId: CHAT, messageCount: 25, excludedCount: 5, fromSeq: 11, toSeq: 40, topic: 'Launch' });
  });

  it.each<[string, Partial<DigestSummaryPlain>]>([
    ['another request id inside', { requestId: OLD_REQUEST }],
    ['another transcript', { transcriptSha256: 'g'.repeat(43) }],
    ['another range (from)', { fromSeq: 1 }],
    ['another range (to)', { toSeq: 39 }],
    ['counts that do not add up', { messageCount: 28, excludedCount: 3 }],
  ])('refuses a summary with %s', async (_, over) => {
    // Sealed with this request's context (the server can't, but it shows the fields are checked on their own).
    await refused([await result(over, { context: digestContext(REQUEST, CHAT, me.deviceId) })]);
  });

  it("refuses an earlier request's result, another signer, another device's context, a missing, doubled or extra result", async () => {
    await refused([await result({ requestId: OLD_REQUEST })]);
    await refused([await result({}, { signer: generateIdentityKey() })]);
    await refused([await result({ deviceId: uid(99) })]);
    await refused([]);
    await refused([await result(), await result()]);
    await refused([await result(), await result({ chatId: OTHER_CHAT }, { chatId: OTHER_CHAT })]);
  });
});
