import { describe, expect, it } from 'vitest';
import { ErrorReason, isErrorReason, mismatchedDevicesDetailsJson, parseMismatchedDevicesDetails } from './errors.js';

describe('ErrorReason', () => {
  it('each key is its wire value in upper case (the enum is the list of codes, nothing else)', () => {
    for (const [key, value] of Object.entries(ErrorReason)) expect(key).toBe(value.toUpperCase());
    expect(isErrorReason('mismatched_devices')).toBe(true);
    expect(isErrorReason('no_such_code')).toBe(false);
  });
});

describe('MismatchedDevicesDetails', () => {
  const details = { missingDevices: [{ userId: 'u1', deviceId: 'd1' }], extraDevices: [{ userId: 'u2', deviceId: 'd2' }] };

  it('goes on the wire with the proto field names (snake_case) and comes back the same', () => {
    const json = mismatchedDevicesDetailsJson(details);
    expect(json).toEqual({ missing_devices: [{ user_id: 'u1', device_id: 'd1' }], extra_devices: [{ user_id: 'u2', device_id: 'd2' }] });
    expect(parseMismatchedDevicesDetails(JSON.parse(JSON.stringify(json)))).toEqual(details);
  });

  it('drops what is not a device ref, and what the caller refuses', () => {
    const raw = { missing_devices: [null, 7, { user_id: 3 }, { user_id: 'u1' }], extra_devices: 'x' };
    expect(parseMismatchedDevicesDetails(raw)).toEqual({ missingDevices: [{ userId: 'u1', deviceId: '' }], extraDevices: [] });
    expect(parseMismatchedDevicesDetails(raw, (r) => r.userId !== 'u1').missingDevices).toEqual([]);
    expect(parseMismatchedDevicesDetails(undefined)).toEqual({ missingDevices: [], extraDevices: [] });
  });
});
