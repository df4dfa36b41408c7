export { CannotDecryptError, GroupHistoryError } from './errors.js';
export { toBase64Url, fromBase64Url, utf8, fromUtf8, equalBytes, isUuid, type Bytes } from './encoding.js';
export { canonicalize, canonicalBytes, type CanonicalValue, type CanonicalObject } from './canonical-json.js';
export {
  SIGNED_STATEMENT_FIELDS,
  ENVELOPE_FIELDS,
  ENVELOPE_HEADER_FIELDS,
  ENVELOPE_HEADER_V1_FIELDS,
  DEVICE_CERTIFICATE_FIELDS,
  GROUP_EPOCH_FIELDS,
  GROUP_EPOCH_V1_FIELDS,
  EPOCH_MEMBER_FIELDS,
  EPOCH_DEVICE_FIELDS,
  GROUP_LEAVE_FIELDS,
  DEVICE_LIST_FIELDS,
  DEVICE_LIST_ENTRY_FIELDS,
  DIGEST_CONSENT_FIELDS,
  hasExactFields,
  type FieldSet,
  type FieldName,
} from './signed-fields.js';
export { SUITES, isSuite, type Suite } from './aead.js';
export { portableBackend, setCryptoBackend, type CryptoBackend, type Sha256Stream } from './backend.js';
export { randomBytes } from './random.js';
export { paddedLength, MAX_PLAINTEXT_LENGTH } from './padding.js';
export { ed25519Verify, type Ed25519KeyPair } from './signature.js';
export {
  RSA_MODULUS_BITS,
  generateDeviceKeys,
  exportDevicePublicKeys,
  exportDevicePrivateKeys,
  importDevicePrivateKeys,
  importEncryptionPublicKey,
  importEncryptionPrivateKey,
  parseSigningKey,
  generateIdentityKey,
  identityKeyFromSeed,
  disposeDeviceKeys,
  type RsaModulusBits,
  type DeviceKeyPair,
  type DevicePublicKeys,
  type ExportedDeviceKeys,
} from './keys.js';
export {
  DEVICE_CERTIFICATE_TYPE,
  deviceCertificatePayload,
  certifyDevice,
  createAccountIdentity,
  linkDevice,
  verifyDeviceCertificate,
  verifyDevice,
  isVerifiedDevice,
  selectCertifiedDevices,
  deviceRecordOf,
  type DeviceCertificate,
  type DeviceRecord,
  type VerifiedDevice,
} from './certificate.js';
export { encryptDirectMessage, decryptDirectMessage, personalChatId } from './direct.js';
export {
  DEVICE_LIST_TYPE,
  MAX_DEVICE_LIST_DEVICES,
  deviceListPayloadBytes,
  signDeviceList,
  verifyDeviceList,
  isVerifiedDeviceList,
  deviceInList,
  deviceListEntryOf,
  type DeviceListEntry,
  type DeviceListPayload,
  type SignedDeviceList,
  type VerifiedDeviceList,
} from './device-list.js';
export {
  ENVELOPE_VERSION,
  LEGACY_ENVELOPE_VERSION,
  readEnvelopeHeader,
  type Scheme,
  type EnvelopeHeader,
  type Envelope,
  type WrappedKey,
  type DirectMessage,
  type LocalDevice,
  type OpenedMessage,
} from './envelope.js';
export {
  GROUP_EPOCH_TYPE,
  LEGACY_GROUP_EPOCH_TYPE,
  createGroup,
  openGroupMetadata,
  rotateEpoch,
  verifyGroupChain,
  extendGroupChain,
  epochRecordHash,
  unwrapEpochKey,
  shareEpochKey,
  type GroupRole,
  type EpochDevice,
  type EpochMember,
  type EpochRecordPayload,
  type SignedEpochRecord,
  type GroupMemberInput,
  type GroupMember,
  type GroupEpoch,
  type GroupChain,
  type EpochKey,
  type EpochUpdate,
} from './group.js';
export { encryptGroupMessage, decryptGroupMessage, EPOCH_GRACE_MS } from './group-message.js';
export { MAX_GROUP_TITLE_LENGTH, type GroupMetadata } from './group-metadata.js';
export {
  DIGEST_CONSENT_TYPE,
  signDigestConsent,
  parseDigestConsent,
  verifyDigestConsent,
  type DigestConsentPayload,
  type SignedDigestConsent,
} from './digest-consent.js';
export {
  MESSAGE_DELETE_TYPE,
  signMessageDelete,
  parseMessageDelete,
  verifyMessageDelete,
  type MessageDeletePayload,
  type SignedMessageDelete,
} from './message-delete.js';
export {
  CHAT_TIMER_TYPE,
  MIN_DISAPPEARING_MS,
  MAX_DISAPPEARING_MS,
  isDisappearingMs,
  signChatTimer,
  parseChatTimer,
  verifyChatTimer,
  type ChatTimerPayload,
  type SignedChatTimer,
} from './chat-timer.js';
export { GROUP_LEAVE_TYPE, signGroupLeave, verifyGroupLeave, type GroupLeavePayload, type SignedGroupLeave } from './group-leave.js';
export {
  SERVICE_KEY_TYPE,
  SEALED_TYPE,
  sealKeyId,
  signServiceKey,
  verifyServiceKey,
  serviceKeyFingerprint,
  sealRecipientForDevice,
  sealPayload,
  openSealedPayload,
  type ServiceKeyPayload,
  type SignedServiceKey,
  type SealRecipient,
  type SealedHeader,
  type SealedBox,
} from './seal.js';
export {
  CONTENT_TYPE,
  CONTENT_MARKER,
  MAX_CONTENT_BYTES,
  MAX_QUOTE_LENGTH,
  MAX_EMOJI_BYTES,
  MAX_THUMBNAIL_BYTES,
  MAX_ATTACHMENTS,
  MAX_ATTACHMENT_FIELD_LENGTH,
  encodeContent,
  decodeContent,
  isReactionEmoji,
  type AttachmentRef,
  type AttachmentThumbnail,
  type ReplyTo,
  type TextContent,
  type ReactionContent,
  type EditContent,
  type MessageContent,
  type UnsupportedContent,
  type InvalidContent,
  type DecodedContent,
} from './content.js';
export { ReplayGuard, envelopeDigest, type ReplayKey, type CounterGap, type SeqGap, type ReplayGuardSnapshot, type Sighting, type SightingVerdict } from './replay.js';
export { fingerprint, safetyNumber, formatSafetyNumber, safetyNumbersMatch } from './safety-number.js';
export { IdentityPins, type PinCheck, type SafetyNumberChanged, type IdentityPinsSnapshot } from './pins.js';
export {
  ATTACHMENT_CHUNK_SIZE,
  attachmentCiphertextSize,
  attachmentRef,
  decryptAttachment,
  encryptAttachment,
  type ByteSource,
  type SealedAttachment,
} from './attachment.js';
