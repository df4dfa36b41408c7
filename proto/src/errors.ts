// The error reasons of the whole system, one enum: the stable `code` a
// service raises (gRPC trailer `bil-error-code`), the gateway answers
// (`{"error":{"code":…}}`) and clients switch on. Adding a code here is
// adding it to the public API: docs/api.md lists it (tests/docs checks both
// directions). Details are typed per reason where a reason carries fields
// clients read (ErrorDetailsByReason); the rest carry free-form details.
//
// Pure: no Node imports, only types from the generated protos, so the
// browser SDK may import it (`@bil/proto/errors`).
import type { DeviceRef__Output } from '../gen/bil/chat/v1/DeviceRef.js';
import type { MismatchedDevicesDetails__Output } from '../gen/bil/chat/v1/MismatchedDevicesDetails.js';

export type { MismatchedDevicesDetails__Output as MismatchedDevicesDetails };

/** Every error code, wire value as value (snake_case, part of the public API). */
export const ErrorReason = {
  ACCOUNT_DELETED: 'account_deleted',
  ALREADY_EXISTS: 'already_exists',
  ALREADY_MEMBER: 'already_member',
  ATTACHMENT_NOT_USABLE: 'attachment_not_usable',
  BLOB_INCOMPLETE: 'blob_incomplete',
  BLOB_NOT_FOUND: 'blob_not_found',
  BLOB_TOO_LARGE: 'blob_too_large',
  CANNOT_CHANGE_OWN_ROLE: 'cannot_change_own_role',
  CANNOT_REMOVE_OWNER: 'cannot_remove_owner',
  CHAT_EXISTS: 'chat_exists',
  CHAT_NOT_FOUND: 'chat_not_found',
  CONCURRENT_MODIFICATION: 'concurrent_modification',
  CONFLICT: 'conflict',
  CONSENT_STALE: 'consent_stale',
  DB_DOWN: 'db_down',
  DEADLINE_EXCEEDED: 'deadline_exceeded',
  DEVICE_EXISTS: 'device_exists',
  DEVICE_LIST_MISMATCH: 'device_list_mismatch',
  DEVICE_LIST_REQUIRED: 'device_list_required',
  DEVICE_LIST_VERSION: 'device_list_version',
  DEVICE_NOT_FOUND: 'device_not_found',
  DEVICE_NOT_IN_EPOCH: 'device_not_in_epoch',
  DEVICE_REVOKED: 'device_revoked',
  DEVICE_UNKNOWN: 'device_unknown',
  DIGEST_KEY_UNAVAILABLE: 'digest_key_unavailable',
  DIGEST_KEY_UNKNOWN: 'digest_key_unknown',
  DIGEST_NOT_FOUND: 'digest_not_found',
  DIRECT_TRANSFER_UNAVAILABLE: 'direct_transfer_unavailable',
  DIGESTS_DISABLED: 'digests_disabled',
  DUPLICATE_CHAT: 'duplicate_chat',
  DUPLICATE_DEVICE: 'duplicate_device',
  DUPLICATE_MEMBER: 'duplicate_member',
  ENVELOPE_CHAT_MISMATCH: 'envelope_chat_mismatch',
  ENVELOPE_EPOCH_HASH_MISMATCH: 'envelope_epoch_hash_mismatch',
  ENVELOPE_MESSAGE_ID_MISMATCH: 'envelope_message_id_mismatch',
  ENVELOPE_RECIPIENT_MISMATCH: 'envelope_recipient_mismatch',
  ENVELOPE_SCHEME_MISMATCH: 'envelope_scheme_mismatch',
  ENVELOPE_SENDER_MISMATCH: 'envelope_sender_mismatch',
  ENVELOPE_TOO_LARGE: 'envelope_too_large',
  EPOCH_CHAT_MISMATCH: 'epoch_chat_mismatch',
  EPOCH_DEVICE_KEY_MISMATCH: 'epoch_device_key_mismatch',
  EPOCH_KEY_EXISTS: 'epoch_key_exists',
  EPOCH_KEYS_MISMATCH: 'epoch_keys_mismatch',
  EPOCH_MEMBERS_MISMATCH: 'epoch_members_mismatch',
  EPOCH_PREV_HASH_MISMATCH: 'epoch_prev_hash_mismatch',
  EPOCH_RECORD_TOO_LARGE: 'epoch_record_too_large',
  EPOCH_REQUIRED: 'epoch_required',
  EPOCH_ROTATION_REQUIRED: 'epoch_rotation_required',
  EPOCH_SIGNER_MISMATCH: 'epoch_signer_mismatch',
  EPOCH_SIGNER_NOT_LISTED: 'epoch_signer_not_listed',
  FAILED_PRECONDITION: 'failed_precondition',
  HASHING_BUSY: 'hashing_busy',
  HEADERS_TOO_LARGE: 'headers_too_large',
  IDENTITY_KEY_MISMATCH: 'identity_key_mismatch',
  INTERNAL: 'internal',
  INVALID_ARGUMENT: 'invalid_argument',
  INVALID_CERTIFICATE: 'invalid_certificate',
  INVALID_CHARACTERS: 'invalid_characters',
  INVALID_ATTACHMENTS: 'invalid_attachments',
  INVALID_CHAT_ID: 'invalid_chat_id',
  INVALID_CHAT_IDS: 'invalid_chat_ids',
  INVALID_CONSENT: 'invalid_consent',
  INVALID_CREDENTIALS: 'invalid_credentials',
  INVALID_DEVICE_LIST: 'invalid_device_list',
  INVALID_ENCODING: 'invalid_encoding',
  INVALID_ENVELOPE: 'invalid_envelope',
  INVALID_EPOCH_RECORD: 'invalid_epoch_record',
  INVALID_EPOCH_SIGNATURE: 'invalid_epoch_signature',
  INVALID_ID: 'invalid_id',
  INVALID_JSON: 'invalid_json',
  INVALID_JWT_KEY: 'invalid_jwt_key',
  INVALID_KEY: 'invalid_key',
  INVALID_LEAVE: 'invalid_leave',
  INVALID_LEAVE_SIGNATURE: 'invalid_leave_signature',
  INVALID_LENGTH: 'invalid_length',
  INVALID_LIMIT: 'invalid_limit',
  INVALID_MAX_ENVELOPES_PER_CHAT: 'invalid_max_envelopes_per_chat',
  INVALID_MEMBERS: 'invalid_members',
  INVALID_NAME: 'invalid_name',
  INVALID_OFFSET: 'invalid_offset',
  INVALID_PAGE_TOKEN: 'invalid_page_token',
  INVALID_PASSWORD: 'invalid_password',
  INVALID_PUSH_ENDPOINT: 'invalid_push_endpoint',
  INVALID_PUSH_KEYS: 'invalid_push_keys',
  INVALID_PEER: 'invalid_peer',
  INVALID_REFRESH_TOKEN: 'invalid_refresh_token',
  INVALID_REQUEST: 'invalid_request',
  INVALID_REQUEST_ID: 'invalid_request_id',
  INVALID_ROLE: 'invalid_role',
  INVALID_SEALED_TRANSCRIPT: 'invalid_sealed_transcript',
  INVALID_SEQ: 'invalid_seq',
  INVALID_TOKEN: 'invalid_token',
  INVALID_TRANSCRIPTS: 'invalid_transcripts',
  INVALID_TYPE: 'invalid_type',
  INVALID_USERNAME: 'invalid_username',
  INVALID_WRAPPED_KEYS: 'invalid_wrapped_keys',
  LEAVE_EPOCH_MISMATCH: 'leave_epoch_mismatch',
  LEAVE_MISMATCH: 'leave_mismatch',
  LEAVE_REQUIRED: 'leave_required',
  LEAVE_TOO_LARGE: 'leave_too_large',
  LENGTH_REQUIRED: 'length_required',
  MEMBER_NOT_FOUND: 'member_not_found',
  MESSAGE_ID_TAKEN: 'message_id_taken',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  MISMATCHED_DEVICES: 'mismatched_devices',
  MISSING_ACTOR: 'missing_actor',
  MISSING_TOKEN: 'missing_token',
  NO_IDENTITY_KEY: 'no_identity_key',
  NO_KEYS: 'no_keys',
  NO_MEMBERS: 'no_members',
  NOT_A_GROUP: 'not_a_group',
  NOT_ACCEPTABLE: 'not_acceptable',
  NOT_AN_ADMIN: 'not_an_admin',
  NOT_FOUND: 'not_found',
  NOT_OWN_DEVICE: 'not_own_device',
  NOT_READY: 'not_ready',
  OFFSET_MISMATCH: 'offset_mismatch',
  OWNER_CANNOT_LEAVE: 'owner_cannot_leave',
  OWNER_ONLY: 'owner_only',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  PEER_LEFT: 'peer_left',
  PERMISSION_DENIED: 'permission_denied',
  PLAINTEXT_TITLE_REFUSED: 'plaintext_title_refused',
  PUSH_ENDPOINT_NOT_ALLOWED: 'push_endpoint_not_allowed',
  PUSH_UNAVAILABLE: 'push_unavailable',
  QUEUE_UNAVAILABLE: 'queue_unavailable',
  QUOTA_EXCEEDED: 'quota_exceeded',
  RATE_LIMITED: 'rate_limited',
  REFRESH_TOKEN_REUSED: 'refresh_token_reused',
  REQUEST_ID_TAKEN: 'request_id_taken',
  REQUEST_TIMEOUT: 'request_timeout',
  SERVICE_UNAUTHENTICATED: 'service_unauthenticated',
  SERVICE_UNAVAILABLE: 'service_unavailable',
  SESSION_EXPIRED: 'session_expired',
  SESSION_NOT_FOUND: 'session_not_found',
  STALE_EPOCH: 'stale_epoch',
  TIMEOUT: 'timeout',
  TOKEN_EXPIRED: 'token_expired',
  TOKEN_REVOKED: 'token_revoked',
  TOO_LARGE: 'too_large',
  TOO_MANY_CONNECTIONS: 'too_many_connections',
  TOO_MANY_DEVICES: 'too_many_devices',
  TOO_MANY_MEMBERS: 'too_many_members',
  TOO_MANY_WRAPPED_KEYS: 'too_many_wrapped_keys',
  TRANSCRIPT_TOO_LARGE: 'transcript_too_large',
  UNAUTHENTICATED: 'unauthenticated',
  UNAVAILABLE: 'unavailable',
  UNEXPECTED_EPOCH: 'unexpected_epoch',
  UNEXPECTED_WRAPPED_KEYS: 'unexpected_wrapped_keys',
  UNKNOWN_DEVICE: 'unknown_device',
  UNKNOWN_EPOCH: 'unknown_epoch',
  UNSUPPORTED_ENVELOPE_VERSION: 'unsupported_envelope_version',
  UNSUPPORTED_MEDIA_TYPE: 'unsupported_media_type',
  UNSUPPORTED_RECORD_VERSION: 'unsupported_record_version',
  UPGRADE_REQUIRED: 'upgrade_required',
  UPLOAD_INCOMPLETE: 'upload_incomplete',
  URI_TOO_LONG: 'uri_too_long',
  USER_EXISTS: 'user_exists',
  USER_NOT_FOUND: 'user_not_found',
  USERNAME_TAKEN: 'username_taken',
  // delete for everyone and disappearing messages (docs/chat.md)
  INVALID_TOMBSTONE: 'invalid_tombstone',
  INVALID_TOMBSTONE_SIGNATURE: 'invalid_tombstone_signature',
  TOMBSTONE_TOO_LARGE: 'tombstone_too_large',
  TOMBSTONE_MISMATCH: 'tombstone_mismatch',
  MESSAGE_NOT_FOUND: 'message_not_found',
  NOT_THE_SENDER: 'not_the_sender',
  INVALID_DISAPPEARING_MS: 'invalid_disappearing_ms',
  INVALID_TIMER_STATEMENT: 'invalid_timer_statement',
  TIMER_STATEMENT_TOO_LARGE: 'timer_statement_too_large',
  TIMER_STATEMENT_MISMATCH: 'timer_statement_mismatch',
  INVALID_TIMER_STATEMENT_SIGNATURE: 'invalid_timer_statement_signature',
  TIMER_STATEMENT_STALE: 'timer_statement_stale',
} as const;

export type ErrorReason = (typeof ErrorReason)[keyof typeof ErrorReason];

const reasons: ReadonlySet<string> = new Set(Object.values(ErrorReason));

/** Whether a string received from elsewhere is a known error reason. */
export function isErrorReason(code: unknown): code is ErrorReason {
  return typeof code === 'string' && reasons.has(code);
}

/** Free-form details (reasons without a typed shape). */
export type ErrorDetails = Record<string, unknown>;

/** `mismatched_devices` on the wire: MismatchedDevicesDetails in the proto3 JSON mapping with the proto's field names (snake_case). */
export type MismatchedDevicesDetailsJson = {
  missing_devices: { user_id: string; device_id: string }[];
  extra_devices: { user_id: string; device_id: string }[];
};

/** Where a request failed the gateway's checks. */
export type RequestIssueDetails = { location: string; field: string; reason: string };

/** The details a reason carries, for the reasons whose details clients read. */
export type ErrorDetailsByReason = {
  mismatched_devices: MismatchedDevicesDetailsJson;
  device_list_version: { current_version: number; expected_version: number };
  device_list_mismatch: { missing_device_ids: string[]; unexpected_device_ids: string[] };
  unexpected_epoch: { current_epoch: number; expected_epoch: number };
  epoch_prev_hash_mismatch: { current_epoch: number };
  invalid_characters: RequestIssueDetails;
  rate_limited: { retry_after_seconds: number; limit?: string };
  service_unavailable: { retry_after_seconds?: number };
};

/** The details of reason R: its typed shape, or free-form. */
export type ErrorDetailsOf<R extends ErrorReason> = R extends keyof ErrorDetailsByReason ? ErrorDetailsByReason[R] : ErrorDetails;

const deviceRefJson = (d: DeviceRef__Output) => ({ user_id: d.userId, device_id: d.deviceId });

/** The wire details of `mismatched_devices`, from the generated MismatchedDevicesDetails. */
export function mismatchedDevicesDetailsJson(d: MismatchedDevicesDetails__Output): MismatchedDevicesDetailsJson {
  return { missing_devices: d.missingDevices.map(deviceRefJson), extra_devices: d.extraDevices.map(deviceRefJson) };
}

function deviceRefs(raw: unknown, accept: (ref: DeviceRef__Output) => boolean): DeviceRef__Output[] {
  if (!Array.isArray(raw)) return [];
  const out: DeviceRef__Output[] = [];
  for (const item of raw as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const userId: unknown = Reflect.get(item, 'user_id');
    const deviceId: unknown = Reflect.get(item, 'device_id');
    if (typeof userId !== 'string') continue;
    const ref: DeviceRef__Output = { userId, deviceId: typeof deviceId === 'string' ? deviceId : '' };
    if (accept(ref)) out.push(ref);
  }
  return out;
}

/**
 * Reads the wire details of `mismatched_devices` into the generated
 * MismatchedDevicesDetails, validating as it goes: entries without a string
 * user id, or refused by `accept`, are dropped.
 */
export function parseMismatchedDevicesDetails(raw: unknown, accept: (ref: DeviceRef__Output) => boolean = () => true): MismatchedDevicesDetails__Output {
  const obj = typeof raw === 'object' && raw !== null ? raw : {};
  return {
    missingDevices: deviceRefs(Reflect.get(obj, 'missing_devices'), accept),
    extraDevices: deviceRefs(Reflect.get(obj, 'extra_devices'), accept),
  };
}
