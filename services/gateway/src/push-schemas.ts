// JSON schemas of the Web Push routes (docs/push.md): the VAPID public key and
// a device's push subscription. Structure and size only: identity checks the
// endpoint (https, an allowed push service host) and the keys, with its own
// codes (invalid_push_endpoint, push_endpoint_not_allowed, invalid_push_keys).
import type { FromSchema } from '@bil/proto/rest';
import { MAX_PUSH_ENDPOINT_CHARS } from '@bil/proto/limits';
import { BEARER, errors } from './schemas.js';

const uuid = (description: string) => ({ type: 'string' as const, format: 'uuid', maxLength: 36, description });
const bodyErrors = [400, 413, 415];
const deviceParams = {
  type: 'object',
  additionalProperties: false,
  required: ['device_id'],
  properties: { device_id: uuid("The caller's own device (the one its access token names).") },
} as const;

export const vapidKeySchema = {
  tags: ['push'],
  summary: "The server's VAPID public key (RFC 8292): the browser's applicationServerKey when it subscribes.",
  description: 'Answers 503 `push_unavailable` when the deployment has no VAPID key (push turned off).',
  response: {
    200: {
      type: 'object',
      required: ['vapid_public_key'],
      additionalProperties: false,
      properties: { vapid_public_key: { type: 'string', description: 'Uncompressed P-256 public key (65 bytes), base64url.' } },
    },
    ...errors(),
  },
} as const;

export type PushSubscriptionParams = FromSchema<typeof putPushSubscriptionSchema.params>;
export type PutPushSubscriptionBody = FromSchema<typeof putPushSubscriptionSchema.body>;
export const putPushSubscriptionSchema = {
  tags: ['push'],
  summary: "Store the Web Push subscription of the caller's own device, replacing any earlier one.",
  description:
    'The body is the browser\'s `PushSubscription.toJSON()`. Only the device the access token names may set its own subscription (403 otherwise). ' +
    'Pushes carry no content: `{"type":"bil.push.v1","chats":N}` (docs/push.md).',
  security: BEARER,
  params: deviceParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['endpoint', 'keys'],
    properties: {
      endpoint: { type: 'string', minLength: 1, maxLength: MAX_PUSH_ENDPOINT_CHARS, description: 'The push service URL (https; a host the deployment allows).' },
      expirationTime: { type: ['number', 'null'], description: 'Ignored (browsers send null).' },
      keys: {
        type: 'object',
        additionalProperties: false,
        required: ['p256dh', 'auth'],
        properties: {
          p256dh: { type: 'string', minLength: 1, maxLength: 100, description: 'The P-256 public key (65 bytes), base64url.' },
          auth: { type: 'string', minLength: 1, maxLength: 40, description: 'The 16-byte authentication secret, base64url.' },
        },
      },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['device_id', 'created_at'],
      additionalProperties: false,
      properties: { device_id: { type: 'string' }, created_at: { type: 'string', description: 'When it was stored, RFC 3339.' } },
    },
    ...errors(...bodyErrors, 401, 403, 404),
  },
} as const;

export const deletePushSubscriptionSchema = {
  tags: ['push'],
  summary: "Remove the Web Push subscription of the caller's own device (204 whether or not there was one).",
  security: BEARER,
  params: deviceParams,
  response: { 204: { type: 'null', description: 'Done; no body.' }, ...errors(400, 401, 403) },
} as const;
