// The digest API's public shapes (docs/sdk.md "Digests"): modes, options,
// outcomes, the pending request a timed-out digest hands back, and the
// disclosure shown before the first digest that leaves the device.
import type { HistoryMessage } from '../chats.js';

/**
 * Where the plaintext is summarised:
 * - `device`: the built-in extractive summariser, in this client. Nothing leaves the device.
 * - `model`: this client calls an OpenAI-compatible API with the user's own key. No bil server sees the plaintext; the model's provider does.
 * - `server`: sealed to the digest service (whose identity key the app configured). Its operator and its model's provider can read it; chat, delivery, identity and the gateway can't.
 */
export type DigestMode = 'server' | 'device' | 'model';

/** The user's own OpenAI-compatible model (`on: 'model'`). */
export interface DigestModelSettings {
  /** The user's API key (sent only to `baseURL`). */
  apiKey: string;
  /** Default: the OpenAI API. Any OpenAI-compatible `/v1` endpoint (Ollama, vLLM, llama.cpp…). */
  baseURL?: string;
  /** Default: the summariser package's default model. */
  model?: string;
}

/** What `confirm` is shown before a digest first sends a chat's messages out of the device in a mode. */
export interface DigestDisclosure {
  readonly on: 'server' | 'model';
  /** The chats not acknowledged for this mode yet. */
  readonly chatIds: readonly string[];
  /** What leaves the device and who can read it (the same text as `client.digests.disclosure(on)`). */
  readonly text: string;
}

export interface DigestOptions {
  /** Where to summarise (default `server`). */
  on?: DigestMode;
  /** Required for `on: 'model'`. */
  model?: DigestModelSettings;
  /** Below this many unread messages a chat's messages are returned instead (default: `BilClientOptions.digest.minUnread`, else 20). Never taken from the server. */
  minUnread?: number;
  /** Asked before the first server (or model) digest of a chat; `true` is remembered per chat and mode in the profile. Without it, an unacknowledged chat is `BilStateError('digest_disclosure_required')`. */
  confirm?: (disclosure: DigestDisclosure) => boolean | Promise<boolean>;
  /** Display names by user id, as the transcript names speakers (default: this user's username, else the user id). */
  names?: Record<string, string>;
  /** The digest service's identity key (Ed25519, base64url) for this call, instead of `BilClientOptions.digest.serviceIdentityKey`. */
  serviceIdentityKey?: string;
  /** Give up waiting after this many ms (default 60 000): `DigestFailedError` `client_timeout` with `pending` to resume. */
  timeoutMs?: number;
  /** First poll interval in ms (default 250, then slower, up to 2 s); a live connection (`client.live()`) wakes the wait at once. */
  pollMs?: number;
}

/** One chat's summary, opened and verified on this device (or made here). */
export interface DigestSummary {
  readonly kind: 'summary';
  readonly chatId: string;
  readonly on: DigestMode;
  readonly topic: string;
  readonly keyPoints: string[];
  readonly actions: { owner: string; action: string }[];
  readonly language: string;
  readonly method: 'llm' | 'extractive';
  /** Messages summarised. */
  readonly messageCount: number;
  /** Messages of the range left out by consent (by this client, or by the digest worker). */
  readonly excludedCount: number;
  /** The unread range read (it may contain messages left out). */
  readonly fromSeq: number;
  readonly toSeq: number;
}

/** A chat below the threshold: its unread messages instead of a digest. */
export interface DigestMessages {
  readonly kind: 'messages';
  readonly chatId: string;
  readonly messages: HistoryMessage[];
}

/**
 * Why no digest leaves the device for a chat:
 * - `group_setting`: the group's signed metadata says `digests: 'off'`;
 * - `group_setting_unverified`: this device can't read the group's current record to know;
 * - `server_policy`: a member switched digests off at the digest service (honoured: it only withholds);
 * - `members_opted_out`: every unread message is from members who signed "leave my messages out".
 */
export type DigestDisabledReason = 'group_setting' | 'group_setting_unverified' | 'server_policy' | 'members_opted_out';

/** A chat for which this mode sends nothing. */
export interface DigestDisabled {
  readonly kind: 'disabled';
  readonly chatId: string;
  readonly reason: DigestDisabledReason;
}

export type DigestOutcome = DigestSummary | DigestMessages | DigestDisabled;

/** What a server digest needs to pick up its result later (`client.digests.resume`): plain JSON, keep it as it is. */
export interface PendingDigest {
  readonly type: 'bil.digest-pending.v1';
  readonly requestId: string;
  readonly deviceId: string;
  /** The service identity key the transcripts were sealed under (and the results must be signed by). */
  readonly serviceIdentityKey: string;
  /** The chats sent, with what their results must echo. */
  readonly chats: readonly { chatId: string; transcriptSha256: string; fromSeq: number; toSeq: number; messageCount: number; excludedCount: number }[];
  /** The other chats' outcomes, already settled on the device. */
  readonly outcomes: readonly DigestOutcome[];
  /** The order the caller asked for. */
  readonly chatIds: readonly string[];
}

/**
 * A digest failed: the service answered `failed` or `expired` (`reason` is
 * its failure reason), the model call failed, or the wait timed out
 * (`client_timeout`). A server request that may still finish carries
 * `requestId` and `pending` (JSON): `client.digests.resume(pending)` later.
 */
export class DigestFailedError extends Error {
  readonly requestId: string | undefined;
  readonly pending: PendingDigest | undefined;

  constructor(
    readonly reason: string,
    init: { requestId?: string; pending?: PendingDigest; cause?: unknown } = {},
  ) {
    super(`digest failed: ${reason}${init.requestId ? ` (request ${init.requestId})` : ''}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'DigestFailedError';
    this.requestId = init.requestId;
    this.pending = init.pending;
  }
}

/** What `client.digests.policy(chatId)` reports. */
export interface DigestPolicy {
  /** A server (or model) digest of this chat may be made: the signed group setting allows it and nobody switched it off at the service. */
  readonly enabled: boolean;
  /** The client's threshold (never the server's). */
  readonly minUnread: number;
  /** The service's chat-wide switch (unsigned; honoured only to withhold). */
  readonly serverEnabled: boolean;
  /** The group's signed setting (`allowed` for personal chats). */
  readonly groupSetting: 'allowed' | 'off' | 'unverified';
  /** Members whose newest verified consent (pinned on this device) says "leave my messages out". */
  readonly excludedUserIds: readonly string[];
}

const READERS = {
  server:
    "A server digest decrypts the unread messages on this device, then seals them (message texts, the senders' names, the chat title) to the digest service. " +
    "Whoever operates the digest worker can read them, and so can the provider of the model it uses, if it uses one. " +
    'The chat, delivery and identity services, the gateway and their databases never see them. Members who opted out, and groups whose admins switched digests off, are left out.',
  model:
    "A bring-your-own-model digest decrypts the unread messages on this device and sends them (message texts, the senders' names, the chat title) with your API key to the model endpoint you configured. " +
    'The provider of that model can read them, and keeps them as its terms say. No bil server sees them. Members who opted out, and groups whose admins switched digests off, are left out.',
  device: 'An on-device digest summarises the unread messages on this device with the built-in summariser. Nothing leaves the device.',
} as const;

/** The disclosure text for a mode (for `model`, naming the endpoint when known). */
export function disclosureText(on: DigestMode, model?: { baseURL?: string }): string {
  if (on === 'model') return `${READERS.model} Endpoint: ${model?.baseURL ?? 'https://api.openai.com/v1 (default)'}.`;
  return READERS[on];
}
