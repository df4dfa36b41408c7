// JSON schemas of every request and response. They validate input (types,
// required fields, no unknown fields, size bounds), shape output (nothing the
// schema doesn't name is ever serialised) and generate the OpenAPI document.
// The request types are derived from the schemas (FromSchema, @bil/proto/rest),
// so a schema and its type can't drift apart.
//
// The gateway checks structure and size; content rules (username characters,
// password strength, key validity, certificate signatures) belong to the
// identity service, which answers with its own specific error codes.

import { MAX_DEVICE_LIST_DEVICES, PASSWORD_MAX, PASSWORD_MIN } from '@bil/proto/limits';
import { MAX_SAFE_INTEGER, restSharedSchemas, type DeviceListJson, type FromSchema } from '@bil/proto/rest';

export { MAX_DEVICE_LIST_DEVICES, MAX_SAFE_INTEGER };

const str = (maxLength: number, description: string, minLength = 1) => ({
  type: 'string' as const,
  minLength,
  maxLength,
  description,
});
const uuid = (description: string) => ({ type: 'string' as const, format: 'uuid', maxLength: 36, description });

/** The shared object schemas (Error, User, Device, DeviceList, Directory, Me, Tokens): defined in @bil/proto/rest with the JSON types derived from them. */
export const sharedSchemas = restSharedSchemas;

const ref = <Id extends (typeof restSharedSchemas)[number]['$id']>(id: Id) => ({ $ref: `${id}#` as const });

export type { DeviceListJson };

const errorResponses: Record<number, string> = {
  400: 'Invalid input (`invalid_request`, `invalid_json`, or a specific code from the identity service).',
  401: 'Missing, invalid, expired or revoked credentials.',
  403: 'Not allowed.',
  404: 'Not found.',
  409: 'Conflict with the current state.',
  413: 'Body larger than the limit (`payload_too_large`).',
  415: 'Body is not `application/json` (`unsupported_media_type`).',
  429: 'Too many attempts (`rate_limited`); see the `Retry-After` header.',
  500: 'Internal error (`internal`).',
  503: 'A backend service is unavailable (`service_unavailable`); Retry-After and `details.retry_after_seconds` say when to try again.',
  504: 'A backend service did not answer in time.',
};

/** Error responses for a route; `codes` picks the statuses it can answer. */
export function errors(...codes: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const c of [...codes, 500, 503, 504]) out[c] = { ...ref('Error'), description: errorResponses[c] };
  return out;
}

export const BEARER = [{ bearerAuth: [] }];
const bodyErrors = [400, 413, 415];

export type RegisterBody = FromSchema<typeof registerSchema.body>;
export const registerSchema = {
  tags: ['auth'],
  summary: 'Create an account (no device yet).',
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['username', 'password'],
    properties: {
      username: str(64, "3 to 32 of a-z A-Z 0-9 _ . -, starting with a letter or digit; unique ignoring case."),
      password: str(1024, `${PASSWORD_MIN} to ${PASSWORD_MAX} characters.`),
      display_name: str(256, 'Optional, at most 64 characters.', 0),
    },
  },
  response: {
    201: { type: 'object', required: ['user'], properties: { user: ref('User') } },
    ...errors(...bodyErrors, 409, 429),
  },
} as const;

export type RegisterDeviceBody = FromSchema<typeof registerDeviceSchema.body>;
export const registerDeviceSchema = {
  tags: ['auth'],
  summary: "Add a device with its public keys to an account (authorised by the account's password) and sign it in.",
  body: {
    type: 'object',
    additionalProperties: false,
    required: [
      'username',
      'password',
      'device_name',
      'encryption_key',
      'signing_key',
      'identity_key',
      'certificate',
      'certificate_issued_at',
    ],
    properties: {
      username: str(64, "The account's username."),
      password: str(1024, "The account's password."),
      device_name: str(256, 'A name for the device, 1 to 64 characters.'),
      encryption_key: str(4096, 'RSA-OAEP public key: SPKI DER, base64url; at least 3072 bits, e = 65537.'),
      signing_key: str(128, 'Ed25519 public key: 32 bytes, base64url.'),
      identity_key: str(128, 'Account identity key (Ed25519, base64url): new for the first device or a reset, else the current one.'),
      certificate: str(256, 'Ed25519 signature by the identity key over the certificate payload (docs/protocol.md), base64url.'),
      certificate_issued_at: {
        type: 'integer',
        minimum: 0,
        maximum: MAX_SAFE_INTEGER,
        description: 'Milliseconds since the epoch, as signed in the certificate.',
      },
      reset_identity: {
        type: 'boolean',
        description: 'Replace the account identity key with identity_key and revoke every other device.',
      },
      device_id: uuid('Optional client-chosen id of the new device (lowercase UUID), so that `device_list` can name it; taken: 409 `device_exists`.'),
      device_list: {
        ...ref('DeviceList'),
        description:
          "The account's next signed device list naming exactly the active devices after this registration: version 1 for a first device or an identity reset, " +
          'else current + 1. Required once the account has a list (409 `device_list_required`).',
      },
    },
  },
  response: {
    201: {
      type: 'object',
      required: ['device', 'tokens'],
      properties: { device: ref('Device'), tokens: ref('Tokens') },
    },
    ...errors(...bodyErrors, 401, 409, 429),
  },
} as const;

export type LoginBody = FromSchema<typeof loginSchema.body>;
export const loginSchema = {
  tags: ['auth'],
  summary: 'Start a new session for an existing, active device.',
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['username', 'password', 'device_id'],
    properties: {
      username: str(64, "The account's username (any case)."),
      password: str(1024, "The account's password."),
      device_id: uuid('The device to sign in; it must belong to the account and be active.'),
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['user_id', 'tokens'],
      properties: { user_id: { type: 'string' }, tokens: ref('Tokens') },
    },
    ...errors(...bodyErrors, 401, 429),
  },
} as const;

export type RefreshBody = FromSchema<typeof refreshSchema.body>;
export const refreshSchema = {
  tags: ['auth'],
  summary: 'Exchange a refresh token for a new token pair. Reusing a spent refresh token ends the whole session.',
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['refresh_token'],
    properties: { refresh_token: str(1024, 'The refresh token from the last sign-in or refresh.') },
  },
  response: {
    200: { type: 'object', required: ['tokens'], properties: { tokens: ref('Tokens') } },
    ...errors(...bodyErrors, 401),
  },
} as const;

const noContent = { 204: { type: 'null', description: 'Done; no body.' } };

export const logoutSchema = {
  tags: ['auth'],
  summary: "End the caller's session; its tokens stop working at once.",
  security: BEARER,
  response: { ...noContent, ...errors(401) },
};

export type DeviceParams = FromSchema<typeof revokeDeviceSchema.params>;
export type RevokeDeviceBody = FromSchema<typeof revokeDeviceSchema.body>;
export const revokeDeviceSchema = {
  tags: ['devices'],
  summary: "Revoke one of the caller's devices (possibly its own); its tokens stop working at once.",
  description:
    'The optional body `{"device_list": …}` carries the next signed device list (current version + 1) without the revoked device, stored in the same step. ' +
    'A device without the identity key sends no body: the device is revoked and the stored list stays until a device holding the key publishes the next one.',
  security: BEARER,
  body: {
    type: 'object',
    additionalProperties: false,
    properties: { device_list: ref('DeviceList') },
  },
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['device_id'],
    properties: { device_id: uuid('The device to revoke.') },
  },
  response: {
    200: { type: 'object', required: ['device_id'], properties: { device_id: { type: 'string' } } },
    ...errors(...bodyErrors, 401, 403, 404, 409),
  },
} as const;

export type FindUserQuery = FromSchema<typeof findUserSchema.querystring>;
export const findUserSchema = {
  tags: ['users'],
  summary: 'Look a user up by username (case-insensitive).',
  security: BEARER,
  querystring: {
    type: 'object',
    additionalProperties: false,
    required: ['username'],
    properties: { username: str(64, 'The username, any case.') },
  },
  response: {
    200: { type: 'object', required: ['user'], properties: { user: ref('User') } },
    ...errors(400, 401, 404),
  },
} as const;

export type UserParams = FromSchema<typeof listDevicesSchema.params>;
export const listDevicesSchema = {
  tags: ['users'],
  summary: "A user's key directory entry: the account identity key and every active device with its certificate.",
  security: BEARER,
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['user_id'],
    properties: { user_id: uuid('The user whose devices are listed.') },
  },
  response: {
    200: ref('Directory'),
    ...errors(400, 401, 404),
  },
} as const;

export const getMeSchema = {
  tags: ['me'],
  summary: "The caller's account and its active devices.",
  security: BEARER,
  response: {
    200: ref('Me'),
    ...errors(401, 404),
  },
};

export type PublishDeviceListBody = FromSchema<typeof publishDeviceListSchema.body>;
export const publishDeviceListSchema = {
  tags: ['me'],
  summary: "Publish the next signed device list of the caller's account (the first one of an older account, or after a revocation by a device without the identity key).",
  description:
    'The list must verify under the account identity key (400 `invalid_device_list`), have version current + 1 (409 `device_list_version`, details `current_version`, `expected_version`) ' +
    'and name exactly the active devices with their keys (409 `device_list_mismatch`, details `missing_device_ids`, `unexpected_device_ids`).',
  security: BEARER,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['device_list'],
    properties: { device_list: ref('DeviceList') },
  },
  response: {
    200: { type: 'object', required: ['version'], properties: { version: { type: 'integer', description: 'The version now stored.' } } },
    ...errors(...bodyErrors, 401, 404, 409),
  },
} as const;

export type UpdateMeBody = FromSchema<typeof updateMeSchema.body>;
export const updateMeSchema = {
  tags: ['me'],
  summary: "Change the caller's display name (empty clears it).",
  security: BEARER,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['display_name'],
    properties: { display_name: str(256, 'At most 64 characters; empty clears it.', 0) },
  },
  response: {
    200: { type: 'object', required: ['user'], properties: { user: ref('User') } },
    ...errors(...bodyErrors, 401, 404),
  },
} as const;

export type DeleteMeBody = FromSchema<typeof deleteMeSchema.body>;
export const deleteMeSchema = {
  tags: ['me'],
  summary: "Delete the caller's account (password confirms), revoking every device.",
  security: BEARER,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['password'],
    properties: {
      password: str(1024, 'The current password.'),
      device_list: {
        ...ref('DeviceList'),
        description: 'Optional closing signed device list (current version + 1, no devices), so contacts can verify that the account was closed.',
      },
    },
  },
  response: { ...noContent, ...errors(...bodyErrors, 401, 404, 409) },
} as const;

export type ChangePasswordBody = FromSchema<typeof changePasswordSchema.body>;
export const changePasswordSchema = {
  tags: ['me'],
  summary: 'Replace the password; every other session of the account ends.',
  security: BEARER,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['old_password', 'new_password'],
    properties: {
      old_password: str(1024, 'The current password.'),
      new_password: str(1024, `The new password, ${PASSWORD_MIN} to ${PASSWORD_MAX} characters.`),
    },
  },
  response: { ...noContent, ...errors(...bodyErrors, 401, 404) },
} as const;

export const healthSchema = {
  tags: ['ops'],
  summary: 'Liveness: the process is up.',
  response: {
    200: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } },
  },
};

export const readySchema = {
  tags: ['ops'],
  summary: 'Readiness: this gateway holds the token keys and can serve. A backend or Redis down: still 200, status `degraded`, `checks` says which.',
  response: {
    200: {
      type: 'object',
      required: ['status'],
      properties: {
        status: { type: 'string', enum: ['ready', 'degraded'] },
        checks: { type: 'object', additionalProperties: { type: 'string', enum: ['ok', 'down'] }, description: 'Each dependency: `ok` or `down`.' },
      },
    },
    503: { ...ref('Error'), description: 'Not ready (`not_ready`, with Retry-After): no token keys yet; details hold every check.' },
  },
};

export const openapiSchema = {
  tags: ['ops'],
  summary: 'This API as an OpenAPI 3 document.',
  response: { 200: { type: 'object', additionalProperties: true } },
};
