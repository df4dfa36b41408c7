// The SDK against the real stack: identity and gateway as built processes on
// the local PostgreSQL, Redis and NATS. Access tokens live 31 s here, so the
// suite also exercises refreshing for real.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BilApiError,
  BilClient,
  BilStateError,
  FileKeyStore,
  MemoryKeyStore,
  SessionEndedError,
  WrongPassphraseError,
  type FetchLike,
  type LocalAccount,
  type SafetyNumberChangedEvent,
} from '../src/node.js';
import { stackBuilt, startStack, type Stack } from './stack.js';

const PASSWORD = 'correct horse battery staple';
const PASSPHRASE = 'key store passphrase, long enough';
const ACCESS_TTL_S = 31;
/** The gateway accepts a token up to 5 s past `exp` (docs/api.md). */
const GATEWAY_CLOCK_TOLERANCE_MS = 5_000;

const username = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fetch that counts refresh calls. */
function countingFetch(): { fetch: FetchLike; refreshes: () => number } {
  let n = 0;
  return {
    fetch: (input, init) => {
      if (input.endsWith('/v1/auth/refresh')) n += 1;
      return fetch(input, init);
    },
    refreshes: () => n,
  };
}

describe.skipIf(!stackBuilt)('@bil/sdk against identity + gateway (e2e)', () => {
  let stack: Stack;
  let dir: string;
  const client = (opts: Partial<ConstructorParameters<typeof BilClient>[0]> = {}) =>
    new BilClient({ baseUrl: stack.baseUrl, keyStore: new MemoryKeyStore(), ...opts });

  // Registered first, with a clock ten minutes slow: it never refreshes ahead
  // of time, so by the last test its access token has expired on the server
  // and the client must recover from a 401 token_expired.
  let sleepy: BilClient;
  let sleepyCounter: ReturnType<typeof countingFetch>;
  let sleepyExpiresAt: number;

  let alice: BilClient;
  let aliceAccount: LocalAccount;
  let aliceFile: string;
  let bob: BilClient;
  let bobAccount: LocalAccount;

  beforeAll(async () => {
    stack = await startStack({ ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL_S) });
    dir = await mkdtemp(join(tmpdir(), 'bil-sdk-e2e-'));
    sleepyCounter = countingFetch();
    const sleepyStore = new MemoryKeyStore();
    sleepy = client({ keyStore: sleepyStore, fetch: sleepyCounter.fetch, now: () => Date.now() - 600_000 });
    await sleepy.register({ username: username('sleepy'), password: PASSWORD });
    sleepyExpiresAt = (await sleepyStore.load())!.tokens!.accessTokenExpiresAt;
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('register creates the account and its first device; logout and login', async () => {
    aliceFile = join(dir, 'alice.json');
    alice = client({ keyStore: new FileKeyStore(aliceFile, PASSPHRASE) });
    const name = username('Alice');
    aliceAccount = await alice.register({ username: name, password: PASSWORD, displayName: 'Alice', deviceName: 'laptop' });
    expect(aliceAccount).toMatchObject({ username: name, deviceName: 'laptop', holdsIdentityKey: true, signedIn: true });

    const me = await alice.me();
    expect(me.user).toMatchObject({ userId: aliceAccount.userId, username: name, displayName: 'Alice', identityKey: aliceAccount.identityKey });
    const devices = await alice.devices.list();
    expect(devices).toEqual([expect.objectContaining({ deviceId: aliceAccount.deviceId, name: 'laptop', current: true, certified: true })]);

    await alice.logout();
    expect((await alice.account())?.signedIn).toBe(false);
    await expect(alice.me()).rejects.toSatisfy((e) => e instanceof BilStateError && e.code === 'not_signed_in');
    await alice.login({ username: name.toUpperCase(), password: PASSWORD });
    expect((await alice.me()).user.userId).toBe(aliceAccount.userId);

    // A restart: a new client on the same file picks up keys and session.
    alice = client({ keyStore: new FileKeyStore(aliceFile, PASSPHRASE) });
    expect(await alice.account()).toEqual({ ...aliceAccount, signedIn: true });
    expect((await alice.updateProfile({ displayName: 'Alice A.' })).displayName).toBe('Alice A.');
  });

  it('the file key store is encrypted at rest; a wrong passphrase is WrongPassphraseError', async () => {
    const stored = (await new FileKeyStore(aliceFile, PASSPHRASE).load())!;
    const text = await readFile(aliceFile, 'utf8');
    for (const secret of [
      stored.deviceKeys.encryption_key_pkcs8,
      stored.deviceKeys.signing_key_seed,
      stored.identitySeed!,
      stored.tokens!.accessToken,
      stored.tokens!.refreshToken,
      stored.tokens!.refreshToken.split('.').at(-1)!,
    ]) {
      expect(secret.length).toBeGreaterThan(20);
      expect(text).not.toContain(secret);
    }
    const wrong = client({ keyStore: new FileKeyStore(aliceFile, 'not the passphrase') });
    await expect(wrong.me()).rejects.toBeInstanceOf(WrongPassphraseError);
  });

  it('typed errors carry the API code', async () => {
    const name = (await alice.account())!.username;
    const err = await client().register({ username: name, password: PASSWORD }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BilApiError);
    expect(err).toMatchObject({ status: 409, code: 'username_taken', message: expect.any(String), details: {} });
    expect((err as BilApiError).correlationId).toMatch(/./);

    await expect(alice.login({ password: 'not the password!' })).rejects.toMatchObject({ status: 401, code: 'invalid_credentials' });
    await expect(client().register({ username: 'x', password: PASSWORD })).rejects.toMatchObject({ status: 400, code: 'invalid_username' });
    await expect(alice.contacts.find('nobody_here_at_all')).rejects.toMatchObject({ status: 404, code: 'user_not_found' });
  });

  it('links a second device; a linked device holding the identity key links a third; revoke', async () => {
    // New device shows a request; alice approves it, opting in to share the identity key; the new device completes with the password.
    const tablet = client();
    const request = await tablet.devices.linkRequest({ deviceName: 'tablet' });
    const approval = await alice.devices.approveLink(JSON.stringify(request), { shareIdentityKey: true });
    const tabletAccount = await tablet.devices.completeLink({ approval: JSON.stringify(approval), password: PASSWORD });
    expect(tabletAccount).toMatchObject({ userId: aliceAccount.userId, identityKey: aliceAccount.identityKey, holdsIdentityKey: true, signedIn: true });

    // The tablet received the identity key, so it can approve the next link (this time keeping the key).
    const phone = client();
    const phoneAccount = await phone.devices.completeLink({
      approval: await tablet.devices.approveLink(await phone.devices.linkRequest({ deviceName: 'phone' }), { shareIdentityKey: false }),
      password: PASSWORD,
    });
    expect(phoneAccount.holdsIdentityKey).toBe(false);
    await expect(phone.devices.approveLink(await client().devices.linkRequest())).rejects.toMatchObject({ code: 'identity_key_not_held' });

    const listed = await alice.devices.list();
    expect(listed.map((d) => [d.name, d.certified, d.current]).sort()).toEqual([
      ['laptop', true, true],
      ['phone', true, false],
      ['tablet', true, false],
    ]);

    // An approval for another request does not open.
    const stranger = client();
    await stranger.devices.linkRequest();
    await expect(stranger.devices.completeLink({ approval, password: PASSWORD })).rejects.toMatchObject({ code: 'invalid_link' });

    // Revoke the phone from the laptop: its session ends at once, and it can't sign in again.
    const ended: string[] = [];
    phone.on('session-ended', (e) => ended.push(e.code));
    await alice.devices.revoke(phoneAccount.deviceId);
    await expect(phone.me()).rejects.toSatisfy((e) => e instanceof SessionEndedError && e.code === 'token_revoked');
    expect(ended).toEqual(['token_revoked']);
    await expect(phone.login({ password: PASSWORD })).rejects.toMatchObject({ status: 403, code: 'device_revoked' });

    // A device revoking itself forgets its profile.
    await tablet.devices.revoke(tabletAccount.deviceId);
    expect(await tablet.account()).toBeNull();
    expect((await alice.devices.list()).map((d) => d.name)).toEqual(['laptop']);
  });

  it('pins a contact on first use, verifies certificates, agrees on safety numbers', async () => {
    bob = client();
    bobAccount = await bob.register({ username: username('bob'), password: PASSWORD });
    const found = await alice.contacts.find(bobAccount.username.toUpperCase());
    expect(found).toMatchObject({ userId: bobAccount.userId, identityKey: bobAccount.identityKey });

    const first = await alice.contacts.devices(bobAccount.userId);
    expect(first).toMatchObject({ pin: 'first-use', pinnedIdentityKey: bobAccount.identityKey, verified: false, rejected: [] });
    expect(first.devices.map((d) => d.deviceId)).toEqual([bobAccount.deviceId]);
    expect((await alice.contacts.devices(bobAccount.userId)).pin).toBe('unchanged');
    // The pin is in the key store, so it survives a restart.
    expect((await new FileKeyStore(aliceFile, PASSPHRASE).load())!.pins.pins[bobAccount.userId]?.identity_key).toBe(bobAccount.identityKey);

    const fromAlice = await alice.contacts.safetyNumber(bobAccount.userId);
    const fromBob = await bob.contacts.safetyNumber(aliceAccount.userId);
    expect(fromAlice).toMatch(/^\d{60}$/);
    expect(fromBob).toBe(fromAlice);
    expect(await alice.contacts.verifySafetyNumber(bobAccount.userId, '1'.repeat(60))).toBe(false);
    expect(await alice.contacts.verifySafetyNumber(bobAccount.userId, fromBob.replace(/(\d{5})/g, '$1 '))).toBe(true);
    expect((await alice.contacts.devices(bobAccount.userId)).verified).toBe(true);

    // Own devices are checked against this device's identity key, not a pin.
    expect((await alice.contacts.devices(aliceAccount.userId)).pin).toBe('own');
  });

  it('a contact resetting identity raises safety-number-changed; the new key is not trusted until accepted', async () => {
    const before = await alice.contacts.safetyNumber(bobAccount.userId);
    const events: SafetyNumberChangedEvent[] = [];
    alice.on('safety-number-changed', (e) => events.push(e));

    // Bob lost his phone: a fresh install resets the identity with username, user id and password.
    const bobNew = client();
    const reset = await bobNew.devices.resetIdentity({ username: bobAccount.username, userId: bobAccount.userId, password: PASSWORD, deviceName: 'new phone' });
    expect(reset.identityKey).not.toBe(bobAccount.identityKey);
    await expect(bob.me()).rejects.toBeInstanceOf(SessionEndedError); // every other device was revoked

    const changed = await alice.contacts.devices(bobAccount.userId);
    expect(changed).toMatchObject({ pin: 'changed', pinnedIdentityKey: bobAccount.identityKey, presentedIdentityKey: reset.identityKey, devices: [] });
    expect(changed.rejected.map((d) => d.deviceId)).toEqual([reset.deviceId]);
    expect(events).toEqual([{ userId: bobAccount.userId, previousIdentityKey: bobAccount.identityKey, currentIdentityKey: reset.identityKey }]);
    expect(await alice.contacts.safetyNumber(bobAccount.userId)).toBe(before); // still the pinned key
    expect(await alice.contacts.pinned(bobAccount.userId)).toEqual({ identityKey: bobAccount.identityKey, verified: true });

    await alice.contacts.acceptIdentityChange(bobAccount.userId, events[0]!.currentIdentityKey);
    const accepted = await alice.contacts.devices(bobAccount.userId);
    expect(accepted).toMatchObject({ pin: 'unchanged', pinnedIdentityKey: reset.identityKey, verified: false, rejected: [] });
    expect(accepted.devices.map((d) => d.deviceId)).toEqual([reset.deviceId]);
    const after = await alice.contacts.safetyNumber(bobAccount.userId);
    expect(after).not.toBe(before);
    expect(await bobNew.contacts.safetyNumber(aliceAccount.userId)).toBe(after);
  });

  it('refreshes ahead of expiry on its own and persists the rotated tokens', async () => {
    let skew = 0;
    const store = new MemoryKeyStore();
    const counter = countingFetch();
    const carol = client({ keyStore: store, fetch: counter.fetch, now: () => Date.now() + skew });
    await carol.register({ username: username('carol'), password: PASSWORD });
    const firstRefresh = (await store.load())!.tokens!.refreshToken;
    const refreshed: number[] = [];
    carol.on('tokens-refreshed', (e) => refreshed.push(e.accessTokenExpiresAt));

    skew = 20_000; // past half of the 31 s lifetime
    await Promise.all([carol.me(), carol.me(), carol.devices.list()]);
    expect(counter.refreshes()).toBe(1);
    expect(refreshed).toHaveLength(1);
    const stored = (await store.load())!.tokens!;
    expect(stored.refreshToken).not.toBe(firstRefresh);
    expect(stored.accessTokenExpiresAt).toBe(refreshed[0]);
  });

  it('a reused refresh token ends the session with SessionEndedError; login starts a new one', async () => {
    const store = new MemoryKeyStore();
    const dave = client({ keyStore: store });
    await dave.register({ username: username('dave'), password: PASSWORD });
    // A copy of the refresh token is used elsewhere first (theft); the client's next refresh presents a spent token.
    const copy = (await store.load())!.tokens!.refreshToken;
    const theft = await fetch(`${stack.baseUrl}/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: copy }),
    });
    expect(theft.status).toBe(200);
    const err = await dave.refreshSession().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionEndedError);
    expect(err).toMatchObject({ status: 401, code: 'refresh_token_reused' });
    expect((await store.load())!.tokens).toBeNull();
    await dave.login({ password: PASSWORD });
    await expect(dave.me()).resolves.toMatchObject({ devices: [expect.anything()] });
  });

  it('changes the password and deletes the account', async () => {
    const store = new MemoryKeyStore();
    const erin = client({ keyStore: store });
    await erin.register({ username: username('erin'), password: PASSWORD });
    await erin.changePassword({ oldPassword: PASSWORD, newPassword: 'an entirely new password' });
    await erin.logout();
    await expect(erin.login({ password: PASSWORD })).rejects.toMatchObject({ code: 'invalid_credentials' });
    await erin.login({ password: 'an entirely new password' });
    await erin.deleteAccount({ password: 'an entirely new password' });
    expect(await erin.account()).toBeNull();
    expect(await store.load()).toBeNull();
  });

  it('recovers from a 401 token_expired with one refresh for concurrent calls', async () => {
    // Wait until the server considers the sleepy client's token expired.
    const wait = sleepyExpiresAt + GATEWAY_CLOCK_TOLERANCE_MS + 1_000 - Date.now();
    if (wait > 0) await sleep(wait);
    expect(sleepyCounter.refreshes()).toBe(0);
    const results = await Promise.all([sleepy.me(), sleepy.me(), sleepy.devices.list(), sleepy.contacts.find(aliceAccount.username)]);
    expect(results).toHaveLength(4);
    expect(sleepyCounter.refreshes()).toBe(1);
  }, 60_000);
});
