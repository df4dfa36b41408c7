// The command tree (commander): every command, its options and help. Actions
// build an App from the global options and return an exit code; run() turns
// any failure into a message with its code and the documented exit code.
import { Argument, Command, CommanderError, Option } from 'commander';
import { App, type GlobalOptions } from './app.js';
import * as account from './commands/account.js';
import * as chats from './commands/chats.js';
import * as content from './commands/content.js';
import * as attachments from './commands/attachments.js';
import * as digests from './commands/digest.js';
import { listen } from './commands/listen.js';
import { chatTimer } from './commands/timer.js';
import { DEFAULT_MODEL_URL, DEFAULT_TIMEOUT_S } from './digest-options.js';
import { describeFailure, ExitCode } from './errors.js';
import { colours, plain, safe, useColour } from './format.js';

export const VERSION = '0.1.0';

type Action = (app: App, ...args: never[]) => Promise<number | void>;

/** The exit code of the action that ran, and its App (for error reporting). */
export interface RunState {
  code: number;
  app: App | undefined;
}

/** What a parsed command line asks for: the command, its arguments, its own options and the global ones. */
export interface Invocation {
  readonly name: string;
  readonly args: readonly unknown[];
  readonly options: Record<string, unknown>;
  readonly globals: GlobalOptions;
}

/** Runs a command's action (tests pass a recorder instead). */
export type Dispatch = (invocation: Invocation, action: Action, state: RunState) => Promise<void>;

const runAction: Dispatch = async (inv, action, state) => {
  const app = new App(inv.globals, inv.name);
  state.app = app;
  const code = await (action as (app: App, ...a: unknown[]) => Promise<number | void>)(app, ...inv.args, inv.options);
  state.code = typeof code === 'number' ? code : ExitCode.ok;
};

const EXIT_CODES_HELP = `
Exit codes:
  0  ok                    5  wrong passphrase for the profile
  1  error (code printed)  6  server unreachable or unavailable
  2  usage                 7  trust check failed (safety number, identity key)
  3  not signed in / auth  8  profile busy (another bil process uses it)
  4  not found

Environment:
  BIL_URL          server (default http://localhost:8080)
  BIL_PROFILE      profile (default "default")
  BIL_CONFIG_DIR   where profiles live (default $XDG_CONFIG_HOME/bil or ~/.config/bil)
  BIL_PASSPHRASE   the profile's passphrase, for scripts (else asked on the terminal)
  BIL_PASSWORD     the account password, for scripts (else asked on the terminal)
  BIL_DIGEST_SERVICE_KEY  the digest service's identity key (else servers.json)
  BIL_MODEL_API_KEY       your model API key, for bil digest --model
  NO_COLOR         no colour (colour is only ever used on a terminal)

Docs: docs/cli.md`;

export function buildProgram(state: RunState, dispatch: Dispatch = runAction): Command {
  const program = new Command('bil');
  const act =
    (name: string, fn: Action) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const options = args[args.length - 2] as Record<string, unknown>;
      const globals = cmd.optsWithGlobals() as GlobalOptions & Record<string, unknown>;
      const { url, profile, json, color } = globals;
      // A subcommand sees its parent commands' options too (bil digest --digest-key K key show).
      let inherited: Record<string, unknown> = {};
      for (let c = cmd.parent; c?.parent; c = c.parent) inherited = { ...c.opts(), ...inherited };
      await dispatch({ name, args: args.slice(0, -2), options: { ...inherited, ...options }, globals: { url, profile, json, color } }, fn, state);
    };

  program
    .description('bil-message from the command line: end-to-end encrypted chats; messages are encrypted and decrypted on this machine.')
    .version(VERSION, '-V, --version')
    .option('--url <url>', 'server URL (default: BIL_URL, the profile\'s server, or http://localhost:8080)')
    .option('-p, --profile <name>', 'profile: one device of one account (default: BIL_PROFILE or "default")')
    .option('--json', 'machine-readable JSON output')
    .option('--no-color', 'no colour (also NO_COLOR)')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(text.replace(/^error: /, 'bil: ')),
    });

  program
    .command('register')
    .description('create an account and this device (keys made here, encrypted in the profile)')
    .argument('<username>', 'letters, digits, ".", "_" or "-", 3 to 32')
    .option('--display-name <name>', 'shown to others')
    .option('--device-name <name>', 'name of this device')
    .action(act('register', account.register));

  program
    .command('login')
    .description('start a new session on this profile\'s device (after logout or a session end)')
    .argument('[username]', 'must match the profile\'s account')
    .action(act('login', account.login));

  program.command('logout').description('end the session; the keys stay in the profile').action(act('logout', account.logout));
  program.command('whoami').description('the profile\'s account, device and server').action(act('whoami', account.whoami));
  program.command('profiles').description('the profiles in the config directory').action(act('profiles', account.profiles));

  const device = program.command('device').description('this account\'s devices: list, revoke, link a new one');
  device.command('list').description('the account\'s devices, checked against its identity key').action(act('device list', account.deviceList));
  device
    .command('revoke')
    .description('revoke a device (its sessions end at once); on a device holding the identity key, also publishes the signed device list without it')
    .argument('<device>', 'device id or a unique prefix of it')
    .option('--yes', 'confirm revoking this very device (its keys are deleted from the profile)')
    .action(act('device revoke', account.deviceRevoke));
  device
    .command('reset-identity')
    .description('make a new account identity key on this device: every other device is revoked, contacts see a new safety number')
    .option('--yes', 'confirm')
    .action(act('device reset-identity', account.deviceResetIdentity));
  device
    .command('link')
    .description('on a NEW machine: print a link request, then read the approval and register this device')
    .option('--name <name>', 'name of the new device')
    .action(act('device link', account.deviceLink));
  device
    .command('add')
    .description('on a device holding the identity key: approve a link request, print the approval')
    .argument('[request]', 'the request bil device link printed ("-" or none: read it from standard input)')
    .option(
      '--share-identity-key',
      'ALSO give the new device the account identity key, so it can approve devices and sign device lists. Risk: whoever steals that device ' +
        'can certify devices of yours until you reset the identity. Default: the key stays on this device only',
    )
    .option('--no-share-identity-key', 'keep the identity key on this device only (the default; accepted for older scripts)')
    .action(act('device add', account.deviceAdd));

  const contacts = program.command('contacts').description('contacts\' identity keys: safety numbers');
  contacts
    .command('verify')
    .description('show the safety number of you and a user; with --digits, compare and mark them verified')
    .argument('<user>', 'username (or @username, or user id)')
    .option('--digits <digits>', 'the number the other person reads out (spaces ignored)')
    .action(act('contacts verify', account.contactsVerify));
  contacts
    .command('accept')
    .description('trust a contact\'s new identity key (after comparing safety numbers)')
    .argument('<user>', 'username')
    .action(act('contacts accept', account.contactsAccept));

  const chat = program.command('chat').description('personal chats and groups').addHelpText('after', CHAT_REFS);
  chat
    .command('create')
    .description('open a personal chat, or create a group')
    .option('--personal <user>', 'the other user')
    .option('--group <title>', 'a group with this title')
    .option('--members <users...>', 'group members, comma or space separated')
    .option('--admins <users...>', 'group members who are admins')
    .action(act('chat create', chats.chatCreate));
  chat
    .command('list')
    .description('your chats, newest activity first, with unread counts')
    .addOption(new Option('--type <type>', 'only personal chats or groups').choices(['personal', 'group']))
    .action(act('chat list', chats.chatList));
  chat.command('members').description('a chat\'s members and roles').argument('<chat>', 'chat reference').action(act('chat members', chats.chatMembers));
  chat
    .command('add')
    .description('add users to a group (admins); a new key epoch lists them')
    .argument('<chat>', 'chat reference')
    .argument('<users...>', 'usernames')
    .option('--admin', 'as admins')
    .action(act('chat add', chats.chatAdd));
  chat
    .command('remove')
    .description('remove a member from a group (admins); the group key changes, so they can\'t read what follows')
    .argument('<chat>', 'chat reference')
    .argument('<user>', 'username')
    .action(act('chat remove', chats.chatRemove));
  chat
    .command('rotate')
    .description('publish a new group key for the members\' current devices (admins; e.g. after a device was linked)')
    .argument('<chat>', 'chat reference')
    .action(act('chat rotate', chats.chatRotate));
  chat.command('leave').description('leave a group (signed, so admins can verify you left)').argument('<chat>', 'chat reference').action(act('chat leave', chats.chatLeave));
  chat
    .command('rename')
    .description('rename a group (admins); the title is encrypted in the next key epoch')
    .argument('<chat>', 'chat reference')
    .argument('<title>', 'the new title')
    .action(act('chat rename', chats.chatRename));
  chat
    .command('resolve-fork')
    .description('after a history fork alert: accept the server\'s current history of a group (compare the members with the others first)')
    .argument('<chat>', 'chat reference')
    .action(act('chat resolve-fork', chats.chatResolveFork));
  chat
    .command('timer')
    .description('disappearing messages: shows the verified timer, or sets it: messages sent from now on vanish this long after they are stored (groups: admins; off: never)')
    .argument('<chat>', 'chat reference')
    .argument('[duration]', 'e.g. 30s, 5m, 12h, 7d, 2w, or off (none: show the verified timer)')
    .action(act('chat timer', chatTimer));
  chat
    .command('digests')
    .description('allow or switch off server and model digests of a group for every member (admins; signed in the group\'s key epoch record)')
    .argument('<chat>', 'chat reference')
    .addArgument(new Argument('<setting>', 'on or off').choices(['on', 'off']))
    .action(act('chat digests', digests.chatDigests));

  program
    .command('send')
    .description('encrypt and send a message')
    .argument('<chat>', 'chat reference: id, @username or group title')
    .argument('[text...]', 'the message; "-" or none with a pipe: read standard input')
    .option('--lines', 'send each line of the text as its own message')
    .option('--reply <message>', 'reply to this message (its id, or its number in bil history)')
    .option('--file <path>', 'attach this file (encrypted here, up to 100 MiB); the text, if any, goes with it')
    .addHelpText('after', CHAT_REFS)
    .action(act('send', chats.send));

  program
    .command('react')
    .description('react to a message with an emoji (encrypted like a message; members\' clients add it up)')
    .argument('<chat>', 'chat reference')
    .argument('<message>', 'message id, or its number in bil history')
    .argument('<emoji>', 'one emoji')
    .option('--remove', 'take your reaction back')
    .action(act('react', content.react));

  program
    .command('edit')
    .description('edit one of your messages (members\' clients keep the earlier text as its history)')
    .argument('<chat>', 'chat reference')
    .argument('<message>', 'message id, or its number in bil history')
    .argument('<text...>', 'the new text')
    .action(act('edit', content.edit));

  program
    .command('delete')
    .description('delete one of your messages for everyone (signed by this device; the server erases it); --for-me hides any message on this profile only')
    .argument('<chat>', 'chat reference')
    .argument('<message>', 'message id, or its number in bil history')
    .option('--for-me', 'hide it on this device profile only (nothing is sent)')
    .action(act('delete', content.remove));

  program
    .command('download')
    .description('save the attachments of a message, decrypted and checked here')
    .argument('<chat>', 'chat reference')
    .argument('<message-id>', 'the message (its id, as `bil history --json` shows)')
    .option('-o, --out <path>', 'where to save it (default: the file name the sender gave, in this directory)')
    .addHelpText('after', CHAT_REFS)
    .action(act('download', attachments.download));

  program
    .command('history')
    .description('a chat\'s messages, decrypted and verified here (marks them read)')
    .argument('<chat>', 'chat reference')
    .option('-n, --limit <n>', 'how many (default 20, at most 200)')
    .option('--before <seq>', 'older than this sequence number')
    .option('--after <seq>', 'newer than this sequence number')
    .option('--no-mark-read', 'leave the read marker where it is')
    .addHelpText('after', CHAT_REFS)
    .action(act('history', chats.history));

  program
    .command('listen')
    .description('live: unread messages first, then new ones as they arrive, with typing and read receipts')
    .option('--chat <chat>', 'only this chat, and send each line typed (or piped in) to it')
    .option('--count <n>', 'exit after this many messages')
    .option('--timeout <seconds>', 'exit after this long (exit code 1 if --count was not reached)')
    .option('--no-receipts', 'don\'t send read receipts or move the read marker')
    .action(act('listen', listen));

  program
    .command('unread')
    .description('unread messages over all chats')
    .option('--messages <n>', 'also show the newest n unread messages of each chat (at most 50)')
    .action(act('unread', chats.unread));

  const digest = program
    .command('digest')
    .description('summaries of unread chats: on the digest service (sealed to its configured key), on this device, or by your own model')
    .argument('[chats...]', 'chat references (default: every chat with at least --min-unread unread messages)')
    .option('--on-device', 'summarise here with the built-in summariser: nothing leaves this machine')
    .option('--model <name>', 'summarise with your own OpenAI-compatible model (key from BIL_MODEL_API_KEY): its provider reads the messages')
    .option('--model-url <url>', `the model's API base URL (default ${DEFAULT_MODEL_URL})`)
    .option('--min-unread <n>', 'offer a digest from this many unread messages (default 20); fewer: the messages instead')
    .option('--yes', 'don\'t ask before the first server or model digest of a chat (what leaves the device is still printed)')
    .option('--resume <request-id>', 'pick up a server digest that timed out')
    .option('--timeout <seconds>', `how long to wait for server summaries (default ${DEFAULT_TIMEOUT_S})`)
    .option('--digest-key <key>', 'the digest service identity key (default: BIL_DIGEST_SERVICE_KEY, then servers.json for the server)')
    .addHelpText('after', DIGEST_HELP)
    .action(act('digest', digests.digest));
  const key = digest.command('key').description('the digest service identity key server digests are sealed to (this machine\'s configuration, never the server\'s word)');
  key
    .command('show', { isDefault: true })
    .description('the key in effect for the profile\'s server (--digest-key, BIL_DIGEST_SERVICE_KEY or servers.json), where it comes from, and its fingerprint')
    .action(act('digest key show', digests.digestKeyShow));
  key
    .command('set')
    .description('save the key for the profile\'s server in servers.json (compare its fingerprint with the operator\'s)')
    .argument('<key>', 'Ed25519 public key, base64url (43 characters)')
    .action(act('digest key set', digests.digestKeySet));
  digest
    .command('consent')
    .description('include or leave out your messages from other members\' server and model digests of a chat (signed by this device)')
    .argument('<chat>', 'chat reference')
    .addArgument(new Argument('<choice>', 'include or exclude').choices(['include', 'exclude']))
    .action(act('digest consent', digests.digestConsent));

  return program;
}

const DIGEST_HELP = `
What leaves this machine:
  (default)      the decrypted unread messages, sealed to the digest service's
                 key: its operator and its model provider can read them
  --model        sent to that model's provider with your key: it can read them
  --on-device    nothing
Before the first server or model digest of a chat bil says so and asks.
A group's admins can switch server and model digests off (bil chat digests),
each member can leave their messages out (bil digest consent).`;

const CHAT_REFS = `
Chat references: a chat id (or a unique prefix of it, as bil chat list shows),
@username for your personal chat with that user, or a group's title (when
only one of your groups has it).`;

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function run(argv: readonly string[], dispatch?: Dispatch): Promise<number> {
  const state: RunState = { code: ExitCode.ok, app: undefined };
  const program = buildProgram(state, dispatch);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const app = state.app;
    let url = '';
    try {
      url = app?.url ?? '';
    } catch {
      // the URL itself was the problem
    }
    const f = describeFailure(err, url);
    const json = app?.out.json ?? argv.includes('--json');
    if (json) {
      process.stderr.write(`${JSON.stringify({ error: { code: f.code, message: f.message, exitCode: f.exitCode, ...(f.hint ? { hint: f.hint } : {}) } })}\n`);
    } else {
      const s = useColour(process.stderr.isTTY, process.env, !argv.includes('--no-color')) ? colours : plain;
      // Messages may carry the server's text or names from it: made safe to print.
      process.stderr.write(`${s.red(`bil: ${safe(f.message)}`)} ${s.dim(`[${safe(f.code)}]`)}\n`);
      if (f.hint) process.stderr.write(`${s.dim(`     ${safe(f.hint)}`)}\n`);
    }
    if (process.env.BIL_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return f.exitCode;
  }
}
