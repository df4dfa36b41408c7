// What every command shares: the global options, output, the profile (lock,
// passphrase, encrypted key store, client) and naming users and chats.
import { existsSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { BilClient, FileKeyStore, type Chat, type LocalAccount } from '@bil/sdk/node';
import { matchChatName, parseChatRef, personalChatWith, isUuid } from './chat-ref.js';
import { CliKeyStore } from './cli-store.js';
import { configDir, profilePaths, readSettings, resolveUrl, writeSettings, DEFAULT_PROFILE, type ProfilePaths } from './config.js';
import { CliError, ExitCode, usage } from './errors.js';
import { chatLabel, colours, plain, useColour, type Style } from './format.js';
import { lockProfile } from './lock.js';
import { readSecret, stdinIsTty } from './prompt.js';
import { readServers, resolveDigestKey, serversPath, type ResolvedDigestKey } from './servers.js';

export interface GlobalOptions {
  url?: string;
  profile?: string;
  json?: boolean;
  color?: boolean;
}

type Env = Record<string, string | undefined>;

/** stdout for results, stderr for notes and errors. */
export class Output {
  readonly json: boolean;
  readonly style: Style;
  readonly errStyle: Style;

  constructor(json: boolean, colour: boolean, errColour: boolean) {
    this.json = json;
    this.style = colour ? colours : plain;
    this.errStyle = errColour ? colours : plain;
  }

  line(text = ''): void {
    process.stdout.write(`${text}\n`);
  }

  lines(lines: readonly string[]): void {
    if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
  }

  /** The command's result: JSON with --json, else the human lines. */
  result(value: unknown, human: () => readonly string[]): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else this.lines(human());
  }

  /** One JSON object per line (listen --json). */
  event(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Progress and instructions for people (stderr, so stdout stays the result). */
  note(text: string): void {
    if (!this.json) process.stderr.write(`${this.errStyle.dim(text)}\n`);
  }

  warn(text: string): void {
    process.stderr.write(`${this.errStyle.yellow(`bil: ${text}`)}\n`);
  }
}

export interface Opened {
  readonly client: BilClient;
  readonly store: CliKeyStore;
  readonly account: LocalAccount;
}

const MIN_PASSPHRASE = 8;

export class App {
  readonly out: Output;
  readonly paths: ProfilePaths;
  readonly command: string;
  readonly #flags: GlobalOptions;
  readonly #env: Env;
  /** The config directory (profiles, servers.json). */
  readonly root: string;
  #url: string | undefined;
  #opened: Opened | null = null;
  #chats: Promise<Chat[]> | null = null;

  constructor(flags: GlobalOptions, command: string, env: Env = process.env) {
    this.#flags = flags;
    this.#env = env;
    this.command = command;
    this.root = configDir(env);
    this.paths = profilePaths(this.root, flags.profile ?? env.BIL_PROFILE ?? DEFAULT_PROFILE);
    const colour = flags.color !== false;
    this.out = new Output(flags.json === true, useColour(process.stdout.isTTY, env, colour), useColour(process.stderr.isTTY, env, colour));
  }

  get profile(): string {
    return this.paths.name;
  }

  /** The server address; known after `open`/`create` (or `resolveServer`). */
  get url(): string {
    return this.#url ?? resolveUrl(this.#flags.url, this.#env, undefined);
  }

  async resolveServer(): Promise<string> {
    this.#url = resolveUrl(this.#flags.url, this.#env, (await readSettings(this.paths)).url);
    return this.#url;
  }

  /** An environment variable (tests pass their own environment). */
  env(name: string): string | undefined {
    return this.#env[name];
  }

  /** The digest service identity key for this profile's server: `--digest-key`, `BIL_DIGEST_SERVICE_KEY`, then servers.json; null if none. */
  async digestKey(flag?: string): Promise<ResolvedDigestKey | null> {
    const url = await this.resolveServer();
    // servers.json is read only when neither the flag nor the variable decides.
    const early = resolveDigestKey(flag, this.#env, {}, url);
    return early ?? resolveDigestKey(undefined, {}, await readServers(this.root), url, serversPath(this.root));
  }

  get exists(): boolean {
    return existsSync(this.paths.keys);
  }

  get defaultDeviceName(): string {
    return `bil on ${hostname()}`.slice(0, 64);
  }

  #lockWaitMs(): number {
    const s = Number(this.#env.BIL_LOCK_WAIT ?? '10');
    return Number.isFinite(s) && s >= 0 ? s * 1000 : 10_000;
  }

  #client(passphrase: string): Opened['client'] {
    const store = new CliKeyStore(new FileKeyStore(this.paths.keys, passphrase));
    const client = new BilClient({ baseUrl: this.url, keyStore: store });
    this.#store = store;
    return client;
  }

  #store: CliKeyStore | null = null;

  /** Opens the profile's device: lock, passphrase, key store. */
  async open(): Promise<Opened> {
    if (this.#opened) return this.#opened;
    await this.resolveServer();
    if (!this.exists) throw this.#noProfile();
    await lockProfile(this.paths.lock, this.profile, this.command, this.#lockWaitMs());
    if (!this.exists) throw this.#noProfile();
    const passphrase = await this.secret('BIL_PASSPHRASE', `Passphrase for profile "${this.profile}": `, 'passphrase');
    const client = this.#client(passphrase);
    const account = await client.account();
    if (!account) throw this.#noProfile();
    await this.#store!.rememberNames({ [account.userId]: account.username });
    this.#opened = { client, store: this.#store!, account };
    return this.#opened;
  }

  /** A new profile (register, device link): lock, a new passphrase, an empty key store. Call `saved` once it holds a device. */
  async create(): Promise<{ client: BilClient; store: CliKeyStore; saved: () => Promise<void> }> {
    await this.resolveServer();
    if (this.exists) throw this.#profileExists();
    // Killed by a signal before a device got in: nothing is left behind either.
    await lockProfile(this.paths.lock, this.profile, this.command, this.#lockWaitMs(), { onSignal: () => this.#discardIfEmptySync() });
    if (this.exists) throw this.#profileExists();
    const passphrase = await this.newSecret('BIL_PASSPHRASE', `a passphrase for profile "${this.profile}" (it encrypts the keys on this machine)`, 'passphrase', MIN_PASSPHRASE).catch(async (err: unknown) => {
      await this.discardIfEmpty();
      throw err;
    });
    const client = this.#client(passphrase);
    const store = this.#store!;
    return { client, store, saved: () => writeSettings(this.paths, { url: this.url }) };
  }

  /** After a failed register or link: removes the profile directory if no device got into it (and no registration waits to be finished). */
  async discardIfEmpty(): Promise<void> {
    if (!this.exists && !existsSync(this.paths.pending)) await rm(this.paths.dir, { recursive: true, force: true });
  }

  #discardIfEmptySync(): void {
    if (!this.exists && !existsSync(this.paths.pending)) rmSync(this.paths.dir, { recursive: true, force: true });
  }

  #noProfile(): CliError {
    return new CliError(
      'no_profile',
      `no profile "${this.profile}" in ${this.paths.dir.replace(/\/profiles\/[^/]+$/, '')}`,
      ExitCode.auth,
      'create it: bil register <username> (new account) or bil device link (add this machine to an account); see bil profiles',
    );
  }

  #profileExists(): CliError {
    return new CliError('profile_exists', `profile "${this.profile}" already holds a device`, ExitCode.error, 'use another profile: --profile <name>');
  }

  /** A secret from the environment variable, else typed on the terminal. */
  async secret(envName: string, prompt: string, what: string): Promise<string> {
    const fromEnv = this.#env[envName];
    if (fromEnv) return fromEnv;
    if (!stdinIsTty()) throw usage(`no ${what}: set ${envName} or run bil on a terminal`);
    const value = await readSecret(prompt);
    if (!value) throw usage(`no ${what} given`);
    return value;
  }

  /** A new secret: from the environment, or typed twice. */
  async newSecret(envName: string, description: string, what: string, minLength: number): Promise<string> {
    const fromEnv = this.#env[envName];
    let value: string;
    if (fromEnv) {
      value = fromEnv;
    } else {
      if (!stdinIsTty()) throw usage(`no ${what}: set ${envName} or run bil on a terminal`);
      value = await readSecret(`Choose ${description}: `);
      if (value.length >= minLength && (await readSecret(`Repeat the ${what}: `)) !== value) throw usage(`the ${what}s differ`);
    }
    if (value.length < minLength) throw usage(`the ${what} is too short: at least ${minLength} characters`);
    return value;
  }

  /** The account password (BIL_PASSWORD or typed). */
  password(confirm = false): Promise<string> {
    return confirm
      ? this.newSecret('BIL_PASSWORD', 'the account password (10 characters or more)', 'password', 1)
      : this.secret('BIL_PASSWORD', 'Account password: ', 'password');
  }

  // ---- names ------------------------------------------------------------------

  /** userId → username of the users this profile knows. */
  names(): Record<string, string> {
    return { ...(this.#opened?.store.data.names ?? this.#store?.data.names ?? {}) };
  }

  /** A user by `@name`, `name` or user id. */
  async user(ref: string): Promise<{ userId: string; username: string }> {
    const { client, store } = await this.open();
    const text = ref.trim().replace(/^@/, '');
    if (!text) throw usage('empty user name');
    if (isUuid(text.toLowerCase())) {
      const userId = text.toLowerCase();
      return { userId, username: store.data.names[userId] ?? userId };
    }
    const user = await client.contacts.find(text);
    await store.rememberNames({ [user.userId]: user.username });
    return { userId: user.userId, username: user.username };
  }

  // ---- chats ------------------------------------------------------------------

  /** Every chat of the account (all pages), fetched once per command. */
  chats(refresh = false): Promise<Chat[]> {
    if (!this.#chats || refresh) {
      this.#chats = (async () => {
        const { client } = await this.open();
        const all: Chat[] = [];
        let cursor = '';
        for (let page = 0; page < 100; page++) {
          const res = await client.chats.list({ limit: 100, ...(cursor ? { cursor } : {}) });
          all.push(...res.chats);
          cursor = res.nextCursor;
          if (!cursor) break;
        }
        return all;
      })();
      this.#chats.catch(() => (this.#chats = null));
    }
    return this.#chats;
  }

  /** A chat by id, id prefix, `@username` (personal) or group title. */
  async chat(ref: string): Promise<Chat> {
    const { client } = await this.open();
    const parsed = parseChatRef(ref);
    if (parsed.kind === 'id') return client.chats.get(parsed.chatId);
    if (parsed.kind === 'user') {
      const user = await this.user(parsed.username);
      const found = personalChatWith(await this.chats(), user.userId, user.username);
      return (await this.chats()).find((c) => c.chatId === found.chatId)!;
    }
    const found = matchChatName(await this.chats(), parsed.text);
    return (await this.chats()).find((c) => c.chatId === found.chatId)!;
  }

  /** `#title` or `@username` of a chat id (fetched if this command hasn't seen it). */
  async label(chatId: string): Promise<string> {
    let chat = (await this.chats()).find((c) => c.chatId === chatId);
    if (!chat) {
      chat = await (await this.open()).client.chats.get(chatId).catch(() => undefined);
      if (chat) (await this.chats()).push(chat);
    }
    return chat ? chatLabel(chat, this.names()) : chatId;
  }
}
