// The request types are derived from the route schemas (FromSchema): what a
// schema requires is required in its type, what it leaves out is optional,
// and a $ref to a shared schema is that schema's type.
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { DeviceListJson } from '@bil/proto/rest';
import type { EnvelopeJson, EpochRecordJson, WrappedKeyJson } from '@bil/proto/rest-chat';
import { createChatSchema, type CreateChatBody, type EpochParams, type ListMessagesQuery, type RemoveMemberBody, type SendMessageBody } from './chat-schemas.js';
import { type ConsentBody, type RequestDigestBody, type SealedBoxJson } from './digest-schemas.js';
import { registerSchema, type DeleteMeBody, type DeviceParams, type FindUserQuery, type RegisterBody, type RegisterDeviceBody } from './schemas.js';

describe('request types derived from the schemas', () => {
  it('required, optional and referenced fields', () => {
    expectTypeOf<RegisterBody>().toEqualTypeOf<{ username: string; password: string; display_name?: string }>();
    expectTypeOf<DeleteMeBody>().toEqualTypeOf<{ password: string; device_list?: DeviceListJson }>();
    expectTypeOf<RegisterDeviceBody['certificate_issued_at']>().toEqualTypeOf<number>();
    expectTypeOf<RegisterDeviceBody['reset_identity']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<DeviceParams>().toEqualTypeOf<{ device_id: string }>();
    expectTypeOf<FindUserQuery>().toEqualTypeOf<{ username: string }>();
    expect(registerSchema.body.required).toEqual(['username', 'password']);
  });

  it('chat routes: a oneOf body is the union of its alternatives, refs are the chat objects', () => {
    type Member = { user_id: string; role?: 'admin' | 'member' };
    expectTypeOf<CreateChatBody>().toEqualTypeOf<
      | { type: 'personal'; peer_user_id: string }
      | { type: 'group'; chat_id: string; title?: string; members: Member[]; epoch_record: EpochRecordJson; epoch_keys: WrappedKeyJson[] }
    >();
    expectTypeOf<SendMessageBody>().toEqualTypeOf<{ message_id: string; envelope: EnvelopeJson; wrapped_keys?: WrappedKeyJson[]; attachment_ids?: string[] }>();
    expectTypeOf<RemoveMemberBody['epoch_record']>().toEqualTypeOf<EpochRecordJson | undefined>();
    expectTypeOf<EpochParams>().toEqualTypeOf<{ chat_id: string; epoch: number }>();
    expectTypeOf<ListMessagesQuery>().toEqualTypeOf<{ after?: number; before?: number; limit?: number }>();
    expect(createChatSchema.body.oneOf.map((o) => o.properties.type.enum[0])).toEqual(['personal', 'group']);
  });

  it("digest routes: refs resolve to the gateway's digest objects", () => {
    expectTypeOf<SealedBoxJson>().toEqualTypeOf<{ header: Record<string, unknown>; wrapped_key: string; ciphertext: string; signature: string }>();
    expectTypeOf<RequestDigestBody>().toEqualTypeOf<{
      request_id: string;
      transcripts: { chat_id: string; sealed: SealedBoxJson; message_count?: number }[];
    }>();
    expectTypeOf<ConsentBody['consent']['payload']['include']>().toEqualTypeOf<boolean>();
  });
});
