// Link requests and approvals: the approval opens only on the device that made
// the request, carries a certificate for exactly its keys, and (optionally) the
// identity key; any alteration is refused with one error.
import { describe, expect, it } from 'vitest';
import { generateDeviceKeys, generateIdentityKey, signDeviceList, toBase64Url, verifyDevice } from '@bil/crypto';
import { BilStateError } from './errors.js';
import { createLinkRequest, openLinkApproval, parseLinkRequest, sealLinkApproval, type LinkApproval } from './linking.js';

const userId = '0193c2a0-0000-7000-8000-00000000a11c';

describe('device linking', async () => {
  const [newKeys, otherKeys] = await Promise.all([generateDeviceKeys(), generateDeviceKeys()]);
  const identity = generateIdentityKey();
  const otherKeysSpki = otherKeys.encryption.spki;

  const deviceId = '0193c2a0-0002-7000-8000-00000000a11c';
  const approverDeviceId = '0193c2a0-0001-7000-8000-00000000a11c';
  const listFor = (request: { encryption_key: string; signing_key: string }, id = deviceId) =>
    signDeviceList({ identity, userId, version: 2, devices: [{ device_id: id, encryption_key: request.encryption_key, signing_key: request.signing_key, added_at: 1 }], createdAt: 2 });
  const approve = async (shareIdentityKey = true, list?: (r: { encryption_key: string; signing_key: string }) => ReturnType<typeof listFor>) => {
    const request = createLinkRequest(newKeys, 'tablet');
    const parsed = await parseLinkRequest(JSON.stringify(request));
    const deviceList = (list ?? listFor)(request);
    const approval = await sealLinkApproval({ request: parsed, identity, userId, username: 'Alice', shareIdentityKey, deviceId, deviceList, approverDeviceId, now: 1_764_100_000_000 });
    return { request, approval };
  };

  it('the approval carries the new device id and the next signed list naming it; a list without it is refused', async () => {
    const { request, approval } = await approve(false);
    const grant = await openLinkApproval({ approval, request, keys: newKeys });
    expect(grant).toMatchObject({ device_id: deviceId, approver_device_id: approverDeviceId, identity_seed: '' });
    expect(grant.device_list?.payload.devices.map((d) => d.device_id)).toEqual([deviceId]);
    const other = await approve(false, (r) => listFor(r, approverDeviceId));
    await expect(openLinkApproval({ approval: other.approval, request: other.request, keys: newKeys })).rejects.toBeInstanceOf(BilStateError);
    const otherKeys = await approve(false, () => listFor({ encryption_key: toBase64Url(otherKeysSpki), signing_key: request.signing_key }));
    await expect(openLinkApproval({ approval: otherKeys.approval, request: otherKeys.request, keys: newKeys })).rejects.toBeInstanceOf(BilStateError);
  });

  it('round trip: the new device gets a certificate for its keys and the identity key', async () => {
    const { request, approval } = await approve();
    const grant = await openLinkApproval({ approval: JSON.parse(JSON.stringify(approval)), request, keys: newKeys });
    expect(grant).toMatchObject({ user_id: userId, username: 'Alice', identity_key: toBase64Url(identity.publicKey), identity_seed: toBase64Url(identity.secretKey) });
    // The certificate verifies as a directory record would.
    await verifyDevice(
      { ...grant, encryption_key: request.encryption_key, signing_key: request.signing_key, device_id: request.link_id },
      identity.publicKey,
    );
  });

  it('the approver may keep the identity key', async () => {
    const { request, approval } = await approve(false);
    expect((await openLinkApproval({ approval, request, keys: newKeys })).identity_seed).toBe('');
  });

  it('the approval carries no secret in the clear', async () => {
    const { approval } = await approve();
    const text = JSON.stringify(approval);
    expect(text).not.toContain(toBase64Url(identity.secretKey));
  });

  const refused = (p: Promise<unknown>) => expect(p).rejects.toSatisfy((e) => e instanceof BilStateError && e.code === 'invalid_link');

  it('refuses an approval for another request (another link id or secret)', async () => {
    const { approval } = await approve();
    const other = createLinkRequest(newKeys, 'tablet');
    await refused(openLinkApproval({ approval, request: other, keys: newKeys }));
    const { request } = await approve();
    const sameIdOtherSecret = { ...request, link_id: approval.link_id };
    await refused(openLinkApproval({ approval, request: sameIdOtherSecret, keys: newKeys }));
  });

  it('refuses an approval opened with another device key', async () => {
    const { request, approval } = await approve();
    await refused(openLinkApproval({ approval, request, keys: otherKeys }));
  });

  it('refuses altered approvals', async () => {
    const { request, approval } = await approve();
    const flip = (s: string) => (s[5] === 'A' ? `${s.slice(0, 5)}B${s.slice(6)}` : `${s.slice(0, 5)}A${s.slice(6)}`);
    const variants: unknown[] = [
      { ...approval, type: 'bil.link-approval.v2' },
      { ...approval, extra: 1 },
      { ...approval, sealed: { ...approval.sealed, ciphertext: flip(approval.sealed.ciphertext) } },
      { ...approval, sealed: { ...approval.sealed, wrapped_key: flip(approval.sealed.wrapped_key) } },
      { ...approval, sealed: { ...approval.sealed, header: { ...approval.sealed.header, kind: 'digest-result' } } },
      'not json',
      null,
    ];
    for (const v of variants) await refused(openLinkApproval({ approval: v as LinkApproval, request, keys: newKeys }));
  });

  it('refuses malformed link requests and weak keys', async () => {
    const request = createLinkRequest(newKeys, 'tablet');
    await refused(parseLinkRequest({ ...request, secret: 'short' }));
    await refused(parseLinkRequest({ ...request, link_id: 'nope' }));
    await refused(parseLinkRequest({ ...request, signing_key: toBase64Url(new Uint8Array(32)) }));
    await refused(parseLinkRequest({ ...request, encryption_key: 'AAAA' }));
    await refused(parseLinkRequest({ ...request, more: true }));
  });
});
