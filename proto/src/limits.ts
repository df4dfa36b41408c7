// The size limits of the public contract, defined once. The services'
// validation, the gateway's JSON schemas and the proto comments use these
// numbers; docs/chat.md's "Limits" table and the proto comments are checked
// against them (tests/docs). Pure: no imports, browser-safe
// (`@bil/proto/limits`).

// --- chat (docs/chat.md "Limits") ----------------------------------------------

/** Largest envelope ciphertext, in base64url characters (192 KiB of bytes). */
export const MAX_CIPHERTEXT_CHARS = 256 * 1024;
/** Most wrapped content keys on one message (one per recipient device). */
export const MAX_WRAPPED_KEYS = 1024;
/** Most wrapped epoch keys in one request (1,024 members with up to 16 devices each). */
export const MAX_EPOCH_KEYS = 16 * 1024;
/** Largest epoch record, as JSON text (a 1,024-member group with a few devices each fits). */
export const MAX_EPOCH_RECORD_CHARS = 6 * 1024 * 1024;
/** Largest encrypted group metadata (epoch record v2 `metadata`), in bytes: nonce ‖ ciphertext ‖ tag. */
export const MAX_METADATA_BYTES = 4096;
/** Smallest encrypted group metadata: a 12-byte nonce and a 16-byte tag. */
export const MIN_METADATA_BYTES = 12 + 16;
/** MAX_METADATA_BYTES in base64url characters. */
export const MAX_METADATA_CHARS = Math.ceil((MAX_METADATA_BYTES * 4) / 3);
/** Largest signed leave, as JSON text (a real one is about 450 characters). */
export const MAX_LEAVE_CHARS = 2048;
/** Most members a group may have (CHAT_MAX_GROUP_MEMBERS may set it lower). */
export const MAX_GROUP_MEMBERS = 1024;
/** Most members an epoch record or a membership request may list (the gateway's schema bound; chat's rules are tighter). */
export const MAX_RECORD_MEMBERS = 10_000;
/** Most devices one member may list in an epoch record. */
export const MAX_MEMBER_DEVICES = 1000;
/** Largest signed message tombstone (bil.message-delete.v1), as JSON text (a real one is about 400 characters). */
export const MAX_TOMBSTONE_CHARS = 2048;
/** Largest signed timer statement (bil.chat-timer.v1), as JSON text (a real one is about 420 characters). */
export const MAX_TIMER_STATEMENT_CHARS = 2048;
/** Shortest disappearing-message timer, in milliseconds (30 s); 0 switches the timer off. The same as @bil/crypto's (chat's validation spec checks). */
export const MIN_DISAPPEARING_MS = 30_000;
/** Longest disappearing-message timer, in milliseconds (365 days). */
export const MAX_DISAPPEARING_MS = 365 * 24 * 3600 * 1000;

// --- digest (docs/digest.md) ---------------------------------------------------

/** Most chats in one digest request (the digest service's own limit may be lower). */
export const MAX_DIGEST_CHATS = 200;
/** Largest sealed transcript ciphertext in base64url characters (a 4 MiB transcript, sealed). */
export const MAX_SEALED_CIPHERTEXT_CHARS = 6 * 1024 * 1024;
/** Largest signed digest consent, as JSON text. */
export const MAX_CONSENT_CHARS = 2048;

// --- identity (docs/api.md, docs/identity.md) ----------------------------------

/** Shortest password, in characters. */
export const PASSWORD_MIN = 10;
/** Longest password, in characters. */
export const PASSWORD_MAX = 256;
/** Most devices a signed device list may name (@bil/crypto's MAX_DEVICE_LIST_DEVICES, checked equal by tests/docs). */
export const MAX_DEVICE_LIST_DEVICES = 64;
/** Largest signed device list, as JSON text. */
export const MAX_DEVICE_LIST_CHARS = 96 * 1024;

// --- attachments (docs/chat.md "Limits", docs/protocol.md "Attachments") --------

/** Largest attachment plaintext in bytes (100 MiB). */
export const MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024;
/** Largest blob (attachment ciphertext) in bytes: 100 MiB plus room for the header and a 16-byte tag per 64 KiB chunk. */
export const MAX_BLOB_BYTES = MAX_ATTACHMENT_BYTES + 32 * 1024;
/** Most bytes one AppendBlob or ReadBlob carries (1 MiB). */
export const MAX_BLOB_CHUNK_BYTES = 1024 * 1024;
/** Most bytes one presigned upload (PresignUpload) may carry straight to object storage (64 MiB). */
export const MAX_DIRECT_PART_BYTES = 64 * 1024 * 1024;
/** Most blobs one message may reference. */
export const MAX_MESSAGE_ATTACHMENTS = 32;

// --- push (docs/push.md) ------------------------------------------------------

/** Longest Web Push endpoint URL, in characters. */
export const MAX_PUSH_ENDPOINT_CHARS = 2048;
/** A subscription's p256dh key: an uncompressed P-256 point (RFC 8291 §3.1). */
export const PUSH_P256DH_BYTES = 65;
/** A subscription's authentication secret (RFC 8291 §3.2). */
export const PUSH_AUTH_BYTES = 16;
/** Most device or user ids in one ListPushSubscriptions request. */
export const MAX_PUSH_LOOKUP_IDS = 1024;
/** The one payload of a push: `{"type":"bil.push.v1","chats":N}`, nothing else (no sender, no text, no chat id). */
export const PUSH_PAYLOAD_TYPE = 'bil.push.v1';
