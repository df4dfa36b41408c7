// The server mode's wire part (docs/digest.md): the digest key, verified
// under the service identity key the app configured (never one the server
// names); transcripts v2 sealed with the context
// `<request_id>:<chat_id>:<device_id>`; the wait; and the results, opened
// with the same context, signed by that identity key, and checked field by
// field against what was sent (request, chat, device, transcript hash, range).
import { openSealedPayload, sealKeyId, sealPayload, verifyServiceKey, type LocalDevice, type SignedServiceKey } from '@bil/crypto';
import { digestContext, encodeTranscript, parseSummary, REQUEST_KIND, RESULT_KIND, transcriptSha256, type Transcript } from '@bil/summarizer';
import type { DigestJson as SchemaDigestJson, DigestKeyJson as SchemaDigestKeyJson } from '@bil/proto/rest-digest';
import { BilStateError } from '../errors.js';
import { DigestFailedError, type DigestSummary, type PendingDigest } from './types.js';

const SERVICE = 'digest';
const enc = encodeURIComponent;

export interface ServerDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  now(): number;
}

/** The key answer as the schema describes it; its signed key is verified before use, its limits only shrink a transcript. */
type DigestKeyJson = Partial<SchemaDigestKeyJson>;
/** A digest as far as the client reads it, as the schema describes it, except its sealed results: untrusted until opened and checked. */
type DigestJson = Pick<SchemaDigestJson, 'request_id' | 'status' | 'failure_reason'> & { results: { chat_id: string; sealed: unknown }[] };

export type SealRecipient = Awaited<ReturnType<typeof verifyServiceKey>>;

/** The current digest key, if it verifies under the configured service identity key (`digest_key_untrusted` otherwise). */
export async function digestKey(deps: ServerDeps, identityKey: string): Promise<{ to: SealRecipient; maxTranscriptBytes: number }> {
  const k = await deps.call<DigestKeyJson>('GET', '/v1/digest/key');
  // Untrusted input: verifyServiceKey fails closed on any shape but a valid signed key.
  const to = await verifyServiceKey(k?.key?.signed_key as unknown as SignedServiceKey, { identityKey, service: SERVICE, now: deps.now() }).catch(() => {
    throw new BilStateError('digest_key_untrusted', 'the digest key is not signed by the configured digest service identity key');
  });
  // Limits only make the transcript smaller: taken from the answer, with a floor.
  const max = k.max_transcript_bytes;
  return { to, maxTranscriptBytes: Number.isSafeInteger(max) && max! >= 16_384 ? max! : 256 * 1024 };
}

/** Encodes a transcript, dropping its oldest messages until it fits (the range then starts at the first one kept). */
export function fitTranscript(t: Transcript, maxBytes: number): { transcript: Transcript; plaintext: Uint8Array } {
  let transcript = t;
  let plaintext = encodeTranscript(transcript);
  while (plaintext.length > maxBytes && transcript.messages.length > 1) {
    const messages = transcript.messages.slice(Math.max(1, Math.floor(transcript.messages.length / 10)));
    transcript = { ...transcript, messages, fromSeq: messages[0]!.seq };
    plaintext = encodeTranscript(transcript);
  }
  return { transcript, plaintext };
}

/** Seals one chat's transcript to the digest key, signed by this device. */
export async function sealTranscript(deps: ServerDeps, to: SealRecipient, local: LocalDevice, plaintext: Uint8Array, t: Transcript): Promise<unknown> {
  return sealPayload({
    to,
    kind: REQUEST_KIND,
    context: digestContext(t.requestId, t.chatId, local.deviceId),
    createdAt: deps.now(),
    plaintext,
    signer: local.keys.signing,
  });
}

export { transcriptSha256 };

/** Sends the sealed transcripts under the request id (idempotent: the same id again returns the same request). */
export async function postRequest(deps: ServerDeps, requestId: string, transcripts: { chat_id: string; sealed: unknown; message_count: number }[]): Promise<void> {
  await deps.call('POST', '/v1/digests', { request_id: requestId, transcripts });
}

/**
 * Waits for the request to settle: woken by `settled` (a live `digest`
 * frame) or polling, slowing down. Past the deadline: `client_timeout` with
 * the pending request, to resume.
 */
export async function waitForResult(
  deps: ServerDeps,
  pending: PendingDigest,
  options: { timeoutMs?: number; pollMs?: number },
  settledOrAfter: (requestId: string, ms: number) => Promise<void>,
): Promise<DigestJson> {
  const { requestId } = pending;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let pollMs = options.pollMs ?? 250;
  for (let first = true; ; first = false) {
    if (!first) {
      if (Date.now() > deadline) throw new DigestFailedError('client_timeout', { requestId, pending });
      await settledOrAfter(requestId, Math.min(pollMs, Math.max(0, deadline - Date.now())));
      pollMs = Math.min(pollMs * 1.5, Math.max(options.pollMs ?? 0, 2000));
    }
    const d = (await deps.call<{ digest: DigestJson }>('GET', `/v1/digests/${enc(requestId)}`)).digest;
    if (d?.request_id !== requestId) throw new BilStateError('digest_result_untrusted', 'the digest answer is for another request');
    if (d.status === 'pending') continue;
    if (d.status !== 'ready') throw new DigestFailedError(d.failure_reason || d.status, { requestId });
    return d;
  }
}

const untrusted = (why: string) => new BilStateError('digest_result_untrusted', `a digest result was refused: ${why}`);

/**
 * Opens every result with this device's key and checks it: the sealed
 * context and the service signature, then every echoed field of the summary
 * (request, chat, device, transcript hash, range) and the counts. Exactly one
 * result per chat sent; anything else is `digest_result_untrusted`.
 */
export async function openResults(local: LocalDevice, pending: PendingDigest, d: DigestJson): Promise<DigestSummary[]> {
  const results = Array.isArray(d.results) ? d.results : [];
  const keyId = await sealKeyId(local.keys.encryption.spki);
  const out: DigestSummary[] = [];
  for (const sent of pending.chats) {
    const mine = results.filter((r) => r?.chat_id === sent.chatId);
    if (mine.length !== 1) throw untrusted(`${mine.length} results for chat ${sent.chatId}`);
    const opened = await openSealedPayload(mine[0]!.sealed, {
      privateKey: local.keys.encryption.privateKey,
      keyId,
      kind: RESULT_KIND,
      context: digestContext(pending.requestId, sent.chatId, pending.deviceId),
      signerKey: pending.serviceIdentityKey,
    }).catch(() => {
      throw untrusted('it does not open for this request, or is not signed by the configured digest service');
    });
    let s: ReturnType<typeof parseSummary>;
    try {
      s = parseSummary(opened.plaintext, {
        requestId: pending.requestId,
        chatId: sent.chatId,
        deviceId: pending.deviceId,
        transcriptSha256: sent.transcriptSha256,
        fromSeq: sent.fromSeq,
        toSeq: sent.toSeq,
      });
    } catch {
      throw untrusted('it is not the summary of the transcript sent in this request');
    }
    if (s.messageCount + s.excludedCount !== sent.messageCount) throw untrusted('its counts do not add up to the messages sent');
    out.push({
      kind: 'summary',
      chatId: sent.chatId,
      on: 'server',
      topic: s.topic,
      keyPoints: s.keyPoints,
      actions: s.actions,
      language: s.language,
      method: s.method,
      messageCount: s.messageCount,
      excludedCount: sent.excludedCount + s.excludedCount,
      fromSeq: sent.fromSeq,
      toSeq: sent.toSeq,
    });
  }
  if (results.length !== pending.chats.length) throw untrusted('results for chats that were not asked for');
  return out;
}
