// The request types are derived from the route schemas (FromSchema): what a
// schema requires is required in its type, what it leaves out is optional,
// and a $ref to a shared schema is that schema's type.
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { DeviceListJson } from '@bil/proto/rest';
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
});
