import { describe, expect, expectTypeOf, it } from 'vitest';
import { restSharedSchemas, type DeviceJson, type DeviceListJson, type DirectoryJson, type FromSchema, type UserJson } from './rest.js';
import {
  restChatSharedSchemas,
  type ChatJson as Chat,
  type EpochsPageJson,
  type MessageJson as Message,
  type MessagesPageJson,
  type UnreadJson,
} from './rest-chat.js';
import { digestSharedSchemas, type DigestJson, type DigestKeyJson, type DigestPolicyJson, type SealedBoxJson } from './rest-digest.js';

describe('REST JSON types derived from the schemas', () => {
  it('required fields are required, the rest optional, with their JSON types', () => {
    expectTypeOf<DeviceJson>().toEqualTypeOf<{
      device_id: string;
      user_id: string;
      name: string;
      encryption_key: string;
      signing_key: string;
      certificate: string;
      certificate_issued_at: number;
      created_at: string;
    }>();
    expectTypeOf<UserJson['display_name']>().toEqualTypeOf<string>();
    expectTypeOf<DeviceListJson['payload']['type']>().toEqualTypeOf<'bil.device-list.v1'>();
    expectTypeOf<DeviceListJson['payload']['devices'][number]['added_at']>().toEqualTypeOf<number>();
    const s = { type: 'object', required: ['a'], properties: { a: { type: 'array', items: { type: 'boolean' } }, b: { anyOf: [{ type: 'string' }, { type: 'null' }] } } } as const;
    expectTypeOf<FromSchema<typeof s>>().toEqualTypeOf<{ a: boolean[]; b?: string | null }>();
    expect(s.required).toEqual(['a']);
  });

  it('oneOf is the union of its alternatives; a $ref may name a shared schema the caller passes', () => {
    const s = {
      type: 'object',
      required: ['type'],
      oneOf: [
        { type: 'object', required: ['type', 'a'], properties: { type: { type: 'string', enum: ['x'] }, a: { type: 'integer' } } },
        { type: 'object', required: ['type'], properties: { type: { type: 'string', enum: ['y'] }, b: { $ref: 'Extra#' } } },
      ],
    } as const;
    const extra = { $id: 'Extra', type: 'object', required: ['n'], properties: { n: { type: 'boolean' } } } as const;
    expectTypeOf<FromSchema<typeof s, typeof extra>>().toEqualTypeOf<{ type: 'x'; a: number } | { type: 'y'; b?: { n: boolean } }>();
    expectTypeOf<FromSchema<typeof s>>().toEqualTypeOf<{ type: 'x'; a: number } | { type: 'y'; b?: unknown }>();
    expect([s.oneOf.length, extra.$id]).toEqual([2, 'Extra']);
  });

  it('every shared schema has an $id', () => {
    expect(restSharedSchemas.map((s) => s.$id)).toEqual(['Error', 'User', 'Device', 'DeviceList', 'Directory', 'Me', 'Tokens']);
  });

  it('the directory entry refers to the device and device-list schemas', () => {
    expectTypeOf<DirectoryJson['devices'][number]>().toEqualTypeOf<DeviceJson>();
    expectTypeOf<DirectoryJson['device_list']>().toEqualTypeOf<DeviceListJson | null | undefined>();
  });
});

describe('chat objects derived from their schemas (@bil/proto/rest-chat)', () => {
  it('enums, references between shared schemas and nested records', () => {
    expectTypeOf<Chat['type']>().toEqualTypeOf<'personal' | 'group'>();
    expectTypeOf<Chat['members'][number]['role']>().toEqualTypeOf<'owner' | 'admin' | 'member'>();
    expectTypeOf<Chat['pending_leaves'][number]['payload']['epoch']>().toEqualTypeOf<number>();
    expectTypeOf<NonNullable<Message['envelope']>['header']['scheme']>().toEqualTypeOf<'group' | 'direct'>();
    expectTypeOf<NonNullable<Message['tombstone']>['payload']['type']>().toEqualTypeOf<'bil.message-delete.v1'>();
    expectTypeOf<Message['removed']>().toEqualTypeOf<boolean>();
    expectTypeOf<NonNullable<Chat['timer_statement']>['payload']['type']>().toEqualTypeOf<'bil.chat-timer.v1'>();
    expectTypeOf<EpochsPageJson['epochs'][number]['record']['payload']['members'][number]['role']>().toEqualTypeOf<'admin' | 'member'>();
    expectTypeOf<EpochsPageJson['has_more']>().toEqualTypeOf<boolean>();
    expectTypeOf<MessagesPageJson['messages'][number]>().toEqualTypeOf<Message>();
    expectTypeOf<MessagesPageJson['last_seq']>().toEqualTypeOf<number>();
    expectTypeOf<UnreadJson['chats'][number]['type']>().toEqualTypeOf<'personal' | 'group'>();
    expectTypeOf<UnreadJson['chats'][number]['newest_unread'][number]>().toEqualTypeOf<Message>();
    expectTypeOf<UnreadJson['next_page_token']>().toEqualTypeOf<string>();
    expect(restChatSharedSchemas.map((s) => s.$id)).toEqual([
      'WrappedKey', 'Envelope', 'EpochRecord', 'SignedLeave', 'SignedTombstone', 'SignedTimer', 'Member', 'Chat', 'Message', 'Epoch', 'MessagesPage', 'EpochsPage', 'UnreadChat', 'Unread',
    ]);
  });
});

describe('digest objects derived from their schemas (@bil/proto/rest-digest)', () => {
  it('statuses, sealed results and consents', () => {
    expectTypeOf<DigestJson['status']>().toEqualTypeOf<'pending' | 'ready' | 'failed' | 'expired'>();
    expectTypeOf<DigestJson['results'][number]['sealed']>().toEqualTypeOf<SealedBoxJson>();
    expectTypeOf<DigestPolicyJson['consents'][number]['payload']['include']>().toEqualTypeOf<boolean>();
    expectTypeOf<DigestKeyJson['key']['key_id']>().toEqualTypeOf<string>();
    expect(digestSharedSchemas.map((s) => s.$id)).toEqual(['SealedBox', 'Digest', 'DigestConsent', 'DigestPolicy', 'DigestKey']);
  });
});

