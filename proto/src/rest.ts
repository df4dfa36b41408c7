// The public REST API's shared object schemas (JSON Schema, as the gateway
// validates and serialises them and publishes them in its OpenAPI document)
// and the JSON types derived from them with FromSchema: the gateway's mappers
// build these types and the SDK reads them, so neither keeps a hand-written
// twin. Pure: no imports but limits, browser-safe (`@bil/proto/rest`).
import { MAX_DEVICE_LIST_DEVICES } from './limits.js';
import type { restChatSharedSchemas } from './rest-chat.js';
import type { digestSharedSchemas } from './rest-digest.js';

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

// --- FromSchema: the TypeScript type of a JSON schema declared `as const` ------
// The subset the API's schemas use: string, integer/number, boolean, null,
// enum, array (items), object (properties, required), anyOf and oneOf (a
// union of the alternatives; an object's own `properties` beside a oneOf are
// left to the alternatives), and a $ref to a shared schema (`User#`), looked
// up in this package's shared schemas and in `X`, extra shared schemas a
// caller keeps itself; anything else is `unknown`.

/** A shared schema a `$ref` may name: anything with an `$id`. */
type Named = { readonly $id: string };

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type ObjectOf<P, R, X extends Named> = Simplify<
  { -readonly [K in keyof P as K extends R ? K : never]: FromSchema<P[K], X> } & {
    -readonly [K in keyof P as K extends R ? never : K]?: FromSchema<P[K], X>;
  }
>;

export type FromSchema<S, X extends Named = never> = S extends {
  readonly $ref: `${infer Id extends (Shared | X)['$id']}#`;
}
  ? FromSchema<Extract<Shared | X, { $id: Id }>, X>
  : S extends { readonly enum: readonly (infer E)[] }
    ? E
    : S extends { readonly anyOf: readonly (infer A)[] }
      ? FromSchema<A, X>
      : S extends { readonly oneOf: readonly (infer A)[] }
        ? FromSchema<A, X>
        : S extends { readonly type: 'string' }
          ? string
          : S extends { readonly type: 'integer' | 'number' }
            ? number
            : S extends { readonly type: 'boolean' }
              ? boolean
              : S extends { readonly type: 'null' }
                ? null
                : S extends { readonly type: 'array'; readonly items: infer I }
                  ? FromSchema<I, X>[]
                  : S extends { readonly type: 'object'; readonly properties: infer P }
                    ? ObjectOf<P, S extends { readonly required: readonly (infer R)[] } ? R : never, X>
                    : S extends { readonly type: 'object' }
                      ? Record<string, unknown>
                      : unknown;

export const restSharedSchemas = [
  {
    $id: 'Error',
    type: 'object',
    description: 'The one error shape of the API.',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'details'],
        properties: {
          code: { type: 'string', description: 'Stable machine-readable code, e.g. `username_taken`.' },
          message: { type: 'string', description: 'Human-readable explanation; do not parse.' },
          details: { type: 'object', additionalProperties: true, description: 'Code-specific fields.' },
        },
      },
    },
  },
  {
    $id: 'User',
    type: 'object',
    description: 'A user as any signed-in user may see it.',
    required: ['user_id', 'username', 'display_name', 'identity_key', 'identity_key_changed_at', 'created_at'],
    properties: {
      user_id: { type: 'string', description: 'User id (UUID).' },
      username: { type: 'string', description: 'Username as registered (case preserved).' },
      display_name: { type: 'string', description: 'Display name; empty when none is set.' },
      identity_key: { type: 'string', description: 'Account identity key (Ed25519, 32 bytes, base64url); empty before the first device.' },
      identity_key_changed_at: { type: 'string', description: 'When the identity key was last set, RFC 3339; empty if never.' },
      created_at: { type: 'string', description: 'When the account was created, RFC 3339.' },
    },
  },
  {
    $id: 'Device',
    type: 'object',
    description: "A device's public record in the key directory.",
    required: [
      'device_id',
      'user_id',
      'name',
      'encryption_key',
      'signing_key',
      'certificate',
      'certificate_issued_at',
      'created_at',
    ],
    properties: {
      device_id: { type: 'string', description: 'Device id (UUID).' },
      user_id: { type: 'string', description: 'The owning user.' },
      name: { type: 'string', description: 'Name the user gave the device.' },
      encryption_key: { type: 'string', description: 'RSA-OAEP public key, SPKI DER, base64url.' },
      signing_key: { type: 'string', description: 'Ed25519 public key, 32 bytes, base64url.' },
      certificate: { type: 'string', description: 'Ed25519 signature by the account identity key (docs/protocol.md), base64url.' },
      certificate_issued_at: { type: 'integer', description: 'Milliseconds since the epoch, as signed in the certificate.' },
      created_at: { type: 'string', description: 'When the device was registered, RFC 3339.' },
    },
  },
  {
    $id: 'DeviceList',
    type: 'object',
    description:
      "A signed device list (docs/protocol.md, \"Signed device lists\"): the account identity key signs the account's devices with a version that only grows. " +
      'The identity service checks the signature, the version and that it names exactly the active devices; clients verify it themselves.',
    additionalProperties: false,
    required: ['payload', 'signature'],
    properties: {
      payload: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'user_id', 'identity_key', 'version', 'devices', 'created_at'],
        properties: {
          type: { type: 'string', enum: ['bil.device-list.v1'] },
          user_id: { type: 'string', maxLength: 36, description: 'The account.' },
          identity_key: { type: 'string', maxLength: 43, description: 'The account identity key that signed it, base64url.' },
          version: { type: 'integer', minimum: 1, maximum: MAX_SAFE_INTEGER, description: '1 for the first list (and after an identity reset), then exactly + 1.' },
          devices: {
            type: 'array',
            maxItems: MAX_DEVICE_LIST_DEVICES,
            description: 'Sorted by device_id, unique; empty when the account was closed.',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['device_id', 'encryption_key', 'signing_key', 'added_at'],
              properties: {
                device_id: { type: 'string', maxLength: 36 },
                encryption_key: { type: 'string', maxLength: 1200, description: 'RSA SPKI DER, base64url.' },
                signing_key: { type: 'string', maxLength: 43, description: 'Ed25519 public key, base64url.' },
                added_at: { type: 'integer', minimum: 0, maximum: MAX_SAFE_INTEGER, description: 'ms since the epoch.' },
              },
            },
          },
          created_at: { type: 'integer', minimum: 0, maximum: MAX_SAFE_INTEGER, description: 'ms since the epoch.' },
        },
      },
      signature: { type: 'string', maxLength: 86, description: 'Ed25519 signature by the identity key over the canonical payload, base64url.' },
    },
  },
  {
    $id: 'Directory',
    type: 'object',
    description: "A user's key directory entry (`GET /v1/users/{user_id}/devices`): the account identity key and every active device with its certificate.",
    required: ['user_id', 'identity_key', 'devices'],
    properties: {
      user_id: { type: 'string' },
      identity_key: { type: 'string', description: 'The key every device certificate must verify under.' },
      devices: { type: 'array', items: { $ref: 'Device#' } },
      device_list: {
        anyOf: [{ $ref: 'DeviceList#' }, { type: 'null' }],
        description: 'The latest signed device list, or null if the user never published one. A deleted account closed with a signed list answers with no devices and that list.',
      },
    },
  },
  {
    $id: 'Me',
    type: 'object',
    description: "The caller's account and its active devices (`GET /v1/me`).",
    required: ['user', 'devices', 'device_list'],
    properties: {
      user: { $ref: 'User#' },
      devices: { type: 'array', items: { $ref: 'Device#' } },
      device_list: { anyOf: [{ $ref: 'DeviceList#' }, { type: 'null' }], description: "The account's latest signed device list, or null." },
    },
  },
  {
    $id: 'Tokens',
    type: 'object',
    description: 'A token pair of one session.',
    required: [
      'access_token',
      'access_token_expires_at',
      'refresh_token',
      'refresh_token_expires_at',
      'token_type',
      'session_id',
    ],
    properties: {
      access_token: { type: 'string', description: 'Short-lived JWT (EdDSA); send as `Authorization: Bearer <token>`.' },
      access_token_expires_at: { type: 'string', description: 'RFC 3339.' },
      refresh_token: { type: 'string', description: 'Opaque, single use; rotated by every refresh.' },
      refresh_token_expires_at: { type: 'string', description: 'RFC 3339; the session ends then.' },
      token_type: { type: 'string', description: 'Always `Bearer`.' },
      session_id: { type: 'string', description: 'The session the tokens belong to.' },
    },
  },
] as const;

/** Every shared schema a `$ref` may name: the identity objects here, the chat objects in rest-chat.ts, the digest objects in rest-digest.ts. */
type Shared = (typeof restSharedSchemas)[number] | (typeof restChatSharedSchemas)[number] | (typeof digestSharedSchemas)[number];
/** The JSON type of the shared schema `$id`. */
export type SharedJson<Id extends Shared['$id']> = FromSchema<Extract<Shared, { $id: Id }>>;

/** The one error shape of the API. */
export type ErrorJson = SharedJson<'Error'>;
/** A user as any signed-in user may see it. */
export type UserJson = SharedJson<'User'>;
/** A device's public record in the key directory. */
export type DeviceJson = SharedJson<'Device'>;
/** A token pair of one session. */
export type TokensJson = SharedJson<'Tokens'>;
/** A signed device list as the API carries it. */
export type DeviceListJson = SharedJson<'DeviceList'>;
/** A user's key directory entry. */
export type DirectoryJson = SharedJson<'Directory'>;
/** The caller's account. */
export type MeJson = SharedJson<'Me'>;
