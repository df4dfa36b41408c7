// Entry "@bil/sdk": the client for the public API. Runs in browsers and Node
// (fetch, WebCrypto and @bil/crypto only); the file key store is in "@bil/sdk/node".
export {
  BilClient,
  type BilClientOptions,
  type BilClientEvents,
  type ConnectionEvent,
  type SafetyNumberChangedEvent,
  type DeviceListChangedEvent,
  type RevokeResult,
  type DeviceListPin,
  type SessionEndedEvent,
  type TokensRefreshedEvent,
  type LocalAccount,
  type OwnDevice,
  type PinStatus,
  type ContactDevices,
  type DevicesApi,
  type ContactsApi,
} from './client.js';
export { BilError, BilApiError, SessionEndedError, BilNetworkError, BilStateError, BilTrustError, BilProtocolError, WrongPassphraseError, KeyStoreFormatError, type BilStateCode, type BilTrustCode } from './errors.js';
export { TypedEmitter, type Listener } from './events.js';
export type { PushApi, PushPayload, PushSubscriptionJson } from './push.js';
export { SealedKeyStore, SealedJsonStore, MemorySealedStorage, type SealedStorage } from './sealed-key-store.js';
export { KEY_STORE_FORMAT, MIN_SCRYPT_LOG2N, type KeyStoreHeader } from './key-store-format.js';
export { MemoryKeyStore, parseProfile, type KeyStore, type StoredProfile, type StoredTokens, type StoredChatState, type StoredDigestState } from './key-store.js';
export { LINK_REQUEST_TYPE, LINK_APPROVAL_TYPE, LINK_APPROVAL_KIND, type LinkRequest, type LinkApproval } from './linking.js';
export { SESSION_ENDED_CODES } from './session.js';
export type { FetchLike, ConnectionState } from './transport.js';
export { OUTAGE_BACKOFF, OUTAGE_RETRY_BUDGET_MS, backoffDelay, isTransient, type Backoff } from './chat/retry.js';
export type { User, Device, Chat, ChatMember, ChatRole, ChatType, UnreadSummary, MessageJson, VerifiedMember, MemberListMismatch } from './wire.js';
export type { UnreadOverview, UnreadChatOverview } from './chats.js';
export type { ChatTimer, TimerAlertEvent, TimerAlertReason } from './chat/timer.js';
export {
  DigestFailedError,
  DEFAULT_MIN_UNREAD,
  type DigestsApi,
  type DigestMode,
  type DigestModelSettings,
  type DigestDisclosure,
  type DigestDisabledReason,
  type DigestPolicy,
  type PendingDigest,
  type DigestOutcome,
  type DigestSummary,
  type DigestMessages,
  type DigestDisabled,
  type DigestOptions,
} from './digest/index.js';
export {
  uuidv7,
  MAX_SEND_ATTEMPTS,
  type ChatsApi,
  type MessagesApi,
  type HistoryMessage,
  type DecryptedMessage,
  type UndecryptableMessage,
  type UndecryptableReason,
  type HistoryPage,
  type HistoryGap,
  type ForkAlert,
  type SendResult,
  type SendTextOptions,
  type HistoryOptions,
  type MessageUpdate,
} from './chats.js';
export { ContentState, applyContent, type EditRecord, type Reactions, type IgnoredContent, type IgnoredReason, type ContentView } from './chat/content-state.js';
export {
  encodeContent,
  decodeContent,
  isReactionEmoji,
  MAX_QUOTE_LENGTH,
  type AttachmentRef,
  type AttachmentThumbnail,
  type MessageContent,
  type DecodedContent,
  type TextContent,
  type ReactionContent,
  type EditContent,
} from '@bil/crypto';
export { formatSafetyNumber, serviceKeyFingerprint, type VerifiedDevice } from '@bil/crypto';
export { LiveConnection, MemoryCursorStore, type LiveConnectionOptions, type LiveEvents, type LiveEnvelope, type CursorStore, type WebSocketLike, type WebSocketFactory } from './live.js';
export {
  LiveClient,
  type LiveClientOptions,
  type LiveClientEvents,
  type LiveReceiptEvent,
  type LiveTypingEvent,
  type LiveEpochEvent,
  type LiveMembershipEvent,
  type LiveMessageDeletedEvent,
} from './live-client.js';
export { MAX_ATTACHMENT_SIZE, type AttachmentSource, type AttachmentsApi, type UploadOptions } from './attachments.js';
