// register, login, logout, whoami, profiles; device add|link|list|revoke;
// contacts verify|accept.
import type { LocalAccount } from '@bil/sdk';
import type { App } from '../app.js';
import { configDir, listProfiles, profilePaths, readPending, readSettings, removePending, writePending, type PendingRegistration } from '../config.js';
import { CliError, describeFailure, ExitCode, usage } from '../errors.js';
import { formatTime, safe, safetyNumberRows, shortId, table } from '../format.js';
import { APPROVAL_PREFIX, REQUEST_PREFIX, decodeLinkToken, encodeLinkToken } from '../link-token.js';
import { ask, readAllStdin, stdinIsTty, stdinLines } from '../prompt.js';

function accountJson(app: App, a: LocalAccount): Record<string, unknown> {
  return { profile: app.profile, url: app.url, ...a };
}

/**
 * Creates the account, then registers this device. If the account was
 * created but the device was not (the server refused the device, the
 * connection dropped), the profile keeps the account's user id
 * (register.json), and the same command on the same profile finishes it:
 * without that the username would stay taken by an account nobody can use.
 */
export async function register(app: App, username: string, o: { displayName?: string; deviceName?: string }): Promise<void> {
  const created = await app.create();
  const pending = await readPending(app.paths);
  if (pending && pending.username.toLowerCase() !== username.replace(/^@/, '').toLowerCase()) {
    throw new CliError(
      'registration_pending',
      `profile "${app.profile}" holds the unfinished registration of "${safe(pending.username)}"`,
      ExitCode.usage,
      `finish it: bil --profile ${app.profile} register ${safe(pending.username)}; or register "${safe(username)}" on another profile (--profile <name>)`,
    );
  }
  if (pending && pending.url !== app.url) {
    throw usage(`the unfinished registration of "${safe(pending.username)}" is on ${pending.url}, not ${app.url}`, `finish it there: --url ${pending.url}`);
  }
  await registerWith(app, created, username, o, pending).catch(async (err: unknown) => {
    const left: PendingRegistration | null = pending ?? (created.client.pendingRegistration ? { ...created.client.pendingRegistration, url: app.url } : null);
    if (left && !app.exists) {
      await writePending(app.paths, left);
      const f = describeFailure(err, app.url);
      throw new CliError(
        f.code,
        `the account "${safe(left.username)}" exists, but registering this device failed: ${f.message}`,
        f.exitCode,
        `finish it with the same command on the same profile (same password): bil --profile ${app.profile} register ${safe(left.username)}`,
      );
    }
    await app.discardIfEmpty();
    throw err;
  });
}

async function registerWith(
  app: App,
  created: Awaited<ReturnType<App['create']>>,
  username: string,
  o: { displayName?: string; deviceName?: string },
  pending: PendingRegistration | null,
): Promise<void> {
  const { client, store, saved } = created;
  let account: LocalAccount;
  const deviceName = o.deviceName ?? app.defaultDeviceName;
  if (pending) {
    // The account exists without an identity key: this registers its first
    // device with a new identity key (nothing to reset; a device registered
    // by the failed run whose answer never arrived is revoked, its keys are lost).
    const password = await app.password();
    app.out.note(`Finishing the registration of "${safe(pending.username)}": creating the keys and registering this device with ${app.url}…`);
    if (o.displayName !== undefined) app.out.note('(--display-name is not changed: the account was created with the first attempt)');
    account = await client.devices.resetIdentity({ username: pending.username, userId: pending.userId, password, deviceName });
    await removePending(app.paths);
  } else {
    const password = await app.password(true);
    app.out.note(`Creating the keys of "${safe(username)}" and registering with ${app.url}…`);
    account = await client.register({
      username,
      password,
      deviceName,
      ...(o.displayName !== undefined ? { displayName: o.displayName } : {}),
    });
  }
  await saved();
  await store.rememberNames({ [account.userId]: account.username });
  const s = app.out.style;
  app.out.result(accountJson(app, account), () => [
    `${s.green('Registered')} ${s.bold(safe(account.username))} with device "${safe(account.deviceName)}" and signed in.`,
    s.dim(`profile "${app.profile}", user ${account.userId}, device ${account.deviceId}`),
  ]);
}

export async function login(app: App, username: string | undefined): Promise<void> {
  const { client } = await app.open();
  const password = await app.password();
  const account = await client.login({ password, ...(username ? { username: username.replace(/^@/, '') } : {}) });
  const s = app.out.style;
  app.out.result(accountJson(app, account), () => [`${s.green('Signed in')} as ${s.bold(safe(account.username))} on device "${safe(account.deviceName)}".`]);
}

export async function logout(app: App): Promise<void> {
  const { client, account } = await app.open();
  await client.logout();
  app.out.result({ profile: app.profile, username: account.username, signedIn: false }, () => [
    `Signed out ${safe(account.username)}. The keys stay in profile "${app.profile}": bil login to sign in again.`,
  ]);
}

export async function whoami(app: App): Promise<void> {
  const { client } = await app.open();
  const a = (await client.account())!;
  const s = app.out.style;
  app.out.result(accountJson(app, a), () =>
    table([
      ['user', `${s.bold(safe(a.username))} ${s.dim(a.userId)}`],
      ['device', `${safe(a.deviceName)} ${s.dim(a.deviceId)}`],
      ['session', a.signedIn ? s.green('signed in') : s.yellow('signed out (bil login)')],
      ['identity key', `${a.identityKey}${a.holdsIdentityKey ? s.dim(' (held by this device: it can approve new devices)') : ''}`],
      ['profile', `${app.profile} ${s.dim(app.paths.dir)}`],
      ['server', app.url],
    ]),
  );
}

export async function profiles(app: App): Promise<void> {
  const root = configDir();
  const names = await listProfiles(root);
  const rows = await Promise.all(names.map(async (name) => ({ name, url: (await readSettings(profilePaths(root, name))).url ?? null, current: name === app.profile })));
  const s = app.out.style;
  app.out.result({ configDir: root, profiles: rows }, () =>
    rows.length === 0
      ? [`No profiles in ${root} yet: bil register <username>`]
      : table([[s.dim('PROFILE'), s.dim('SERVER')], ...rows.map((r) => [`${r.current ? '*' : ' '} ${r.name}`, r.url ?? ''])]),
  );
}

// ---- devices ------------------------------------------------------------------

/** Like chat references: a shorter prefix too easily names a device by accident. */
const MIN_DEVICE_PREFIX = 4;

export async function deviceList(app: App): Promise<void> {
  const { client } = await app.open();
  const devices = await client.devices.list();
  const s = app.out.style;
  app.out.result(
    devices.map((d) => ({ deviceId: d.deviceId, name: d.name, createdAt: d.createdAt, current: d.current, certified: d.certified })),
    () =>
      table([
        [s.dim('DEVICE'), s.dim('NAME'), s.dim('ADDED'), s.dim('')],
        ...devices.map((d) => [
          shortId(d.deviceId),
          safe(d.name),
          formatTime(Date.parse(d.createdAt)),
          [d.current ? s.green('this device') : '', d.certified ? '' : s.red('NOT CERTIFIED by your identity key')].filter(Boolean).join(', '),
        ]),
      ]),
  );
}

export async function deviceRevoke(app: App, ref: string, o: { yes?: boolean }): Promise<void> {
  const id = ref.trim().toLowerCase();
  if (id.length < MIN_DEVICE_PREFIX) throw usage(`device "${ref}": give the device id or at least ${MIN_DEVICE_PREFIX} characters of it`, 'see them: bil device list');
  const { client } = await app.open();
  const devices = await client.devices.list();
  const matches = devices.filter((d) => d.deviceId.startsWith(id));
  if (matches.length === 0) throw new CliError('device_not_found', `no device of this account matches "${ref}"`, ExitCode.notFound, 'see them: bil device list');
  if (matches.length > 1) throw usage(`"${ref}" matches ${matches.length} devices: give more of the id`);
  const device = matches[0]!;
  if (device.current && !o.yes) throw usage('that is this device: its keys would be deleted from this profile; add --yes to revoke it anyway');
  const result = await client.devices.revoke(device.deviceId);
  const s = app.out.style;
  app.out.result(
    {
      deviceId: device.deviceId,
      name: device.name,
      revoked: true,
      current: device.current,
      deviceListPublished: result.deviceListPublished,
      identityResetAdvised: result.identityResetAdvised,
    },
    () => [
      `Revoked device "${safe(device.name)}" (${device.deviceId}).${device.current ? ` Profile "${app.profile}" no longer holds keys.` : ''}`,
      ...(result.deviceListPublished || device.current
        ? []
        : [s.dim('This device does not hold the identity key, so it could not sign the new device list; a device that holds it publishes the list the next time it lists its devices (bil device list).')]),
      ...(result.identityResetAdvised
        ? [
            s.red('That device held your account identity key: it can still certify devices in your name wherever the key was copied.'),
            s.red('Reset the identity to be sure it no longer counts: bil device reset-identity --yes (every other device is revoked; contacts see a new safety number).'),
          ]
        : []),
    ],
  );
}

/** A new account identity key on this device: every other device is revoked, contacts see a new safety number. */
export async function deviceResetIdentity(app: App, o: { yes?: boolean }): Promise<void> {
  if (!o.yes) throw usage('this revokes every other device of the account and changes your safety number with everyone; add --yes to do it');
  const { client } = await app.open();
  const password = await app.password();
  const account = await client.devices.resetIdentity({ password });
  const s = app.out.style;
  app.out.result(accountJson(app, account), () => [
    `${s.green('New identity key')} on device "${safe(account.deviceName)}"; every other device was revoked. Contacts will see a new safety number: compare it again (bil contacts verify <user>).`,
  ]);
}

/** On the new machine: makes a link request, waits for the approval, registers this device. */
export async function deviceLink(app: App, o: { name?: string }): Promise<void> {
  const created = await app.create();
  await linkWith(app, created, o).catch(async (err: unknown) => {
    await app.discardIfEmpty();
    throw err;
  });
}

async function linkWith(app: App, created: Awaited<ReturnType<App['create']>>, o: { name?: string }): Promise<void> {
  const { client, store, saved } = created;
  const password = await app.password();
  const request = await client.devices.linkRequest({ deviceName: o.name ?? app.defaultDeviceName });
  const token = encodeLinkToken(REQUEST_PREFIX, request);
  if (app.out.json) {
    app.out.event({ linkRequest: token });
  } else {
    app.out.note('On a device of the account that holds the identity key (see bil whoami), run:');
    app.out.note(`  bil device add <the request below>`);
    app.out.line(token);
    app.out.note('then paste the approval it prints here.');
  }
  let approval = '';
  if (stdinIsTty()) {
    approval = await ask('Approval: ');
  } else {
    for await (const line of stdinLines()) {
      if (line.trim()) {
        approval = line.trim();
        break;
      }
    }
  }
  if (!approval) throw usage('no approval given');
  app.out.note('Registering this device…');
  const account = await client.devices.completeLink({ approval: decodeLinkToken(APPROVAL_PREFIX, approval, 'link approval'), password });
  await saved();
  await store.rememberNames({ [account.userId]: account.username });
  const s = app.out.style;
  // --json: a second line after the request line, so a script reads them one by one.
  if (app.out.json) return app.out.event({ profile: app.profile, url: app.url, ...account });
  app.out.result({}, () => [
    `${s.green('Linked')} device "${safe(account.deviceName)}" to ${s.bold(safe(account.username))} and signed in (profile "${app.profile}").`,
  ]);
}

/** On a device holding the identity key: approves a link request. */
export async function deviceAdd(app: App, requestArg: string | undefined, o: { shareIdentityKey?: boolean }): Promise<void> {
  let text = requestArg;
  if (text === undefined || text === '-') {
    if (stdinIsTty() && text === undefined) throw usage('give the link request that bil device link printed on the new device');
    text = (await readAllStdin()).trim();
  }
  const json = decodeLinkToken(REQUEST_PREFIX, text, 'link request');
  const { client } = await app.open();
  const share = o.shareIdentityKey === true;
  const approval = await client.devices.approveLink(json, { shareIdentityKey: share });
  const token = encodeLinkToken(APPROVAL_PREFIX, approval);
  const name = (JSON.parse(json) as { device_name?: string }).device_name ?? '';
  if (app.out.json) {
    app.out.result({ approval: token, deviceName: name, sharesIdentityKey: share }, () => []);
  } else {
    if (share) app.out.note('The new device also gets the identity key: if it is ever lost or stolen, revoke it and reset the identity.');
    app.out.note(`Approved "${safe(name)}". Paste this on the new device:`);
    app.out.line(token);
  }
}

// ---- contacts -------------------------------------------------------------------

export async function contactsVerify(app: App, ref: string, o: { digits?: string }): Promise<void> {
  const { client, account } = await app.open();
  const user = await app.user(ref);
  const contact = await client.contacts.devices(user.userId);
  const number = await client.contacts.safetyNumber(user.userId);
  let matches: boolean | undefined;
  if (o.digits !== undefined) matches = await client.contacts.verifySafetyNumber(user.userId, o.digits);
  const pinned = await client.contacts.pinned(user.userId);
  const verified = user.userId === account.userId || (pinned?.verified ?? false);
  const s = app.out.style;
  const value = {
    userId: user.userId,
    username: user.username,
    safetyNumber: number,
    pin: contact.pin,
    verified,
    devices: contact.devices.length,
    rejectedDevices: contact.rejected.length,
    ...(matches !== undefined ? { matches } : {}),
  };
  app.out.result(value, () => {
    const them = safe(user.username);
    const lines = [`Safety number of you (${safe(account.username)}) and ${s.bold(them)}:`, '', ...safetyNumberRows(number).map((r) => `    ${s.bold(r)}`), ''];
    if (contact.pin === 'changed') {
      lines.push(s.red(`${them} has a NEW identity key since you pinned theirs: this number is for the old key.`));
      lines.push(s.red(`Messages to them are refused until you accept it: bil contacts accept ${them}`));
    }
    if (matches === true) lines.push(s.green(`✔ The numbers match: ${them} is verified.`));
    else if (matches === undefined) {
      lines.push(verified ? s.green('✔ verified') : `Not verified yet. Compare it with ${them} in person or on a call, then: bil contacts verify ${them} --digits "<their number>"`);
    }
    lines.push(s.dim(`${contact.devices.length} device(s) certified by the pinned identity key${contact.rejected.length ? `, ${contact.rejected.length} refused` : ''}`));
    return lines;
  });
  if (matches === false) {
    throw new CliError('safety_number_mismatch', `the digits do not match the safety number of you and ${safe(user.username)}`, ExitCode.trust, 'do not trust this contact until you know why');
  }
}

export async function contactsAccept(app: App, ref: string): Promise<void> {
  const { client } = await app.open();
  const user = await app.user(ref);
  await client.contacts.acceptIdentityChange(user.userId);
  app.out.result({ userId: user.userId, username: user.username, accepted: true, verified: false }, () => [
    `Accepted the current identity key of ${safe(user.username)} (not verified: compare safety numbers with bil contacts verify ${safe(user.username)}).`,
  ]);
}
