// digest [chats…] (server, on-device or model), digest key show|set,
// digest consent, chat digests on|off (docs/cli.md "Digests").
import { DigestFailedError, type DigestDisclosure, type DigestOutcome, type HistoryMessage, type PendingDigest } from '@bil/sdk';
import type { App } from '../app.js';
import { planDigest, whoReads, type DigestFlags } from '../digest-options.js';
import { CliError, ExitCode, usage } from '../errors.js';
import { chatLabel, digestLines, messageJson, safe, shortId } from '../format.js';
import { ask, stdinIsTty } from '../prompt.js';
import { checkDigestKey, digestKeyFingerprint, readServers, serverEntry, serversPath, updateServers } from '../servers.js';

const env = (app: App) => ({ BIL_MODEL_API_KEY: app.env('BIL_MODEL_API_KEY') });

function noKey(app: App): CliError {
  return new CliError(
    'digest_key_not_configured',
    `no digest service key is configured for ${app.url}: a server digest is sealed only to a key this machine was given, never to one the server names`,
    ExitCode.usage,
    'bil digest key set <key> (the operator publishes it; npm start prints it), BIL_DIGEST_SERVICE_KEY or --digest-key; or bil digest --on-device (nothing leaves this machine)',
  );
}

export async function digest(app: App, refs: string[], o: DigestFlags): Promise<void> {
  const plan = planDigest(refs, o, env(app));
  // The key first: without one, a server digest stops before asking for the passphrase.
  // (A resumed request carries the key its transcripts were sealed under.)
  const key = plan.mode.on === 'server' && plan.resume === undefined ? await app.digestKey(o.digestKey) : null;
  if (plan.mode.on === 'server' && plan.resume === undefined && !key) throw noKey(app);
  const keyInfo = key ? { fingerprint: digestKeyFingerprint(key.key), from: key.from } : undefined;
  const { client, store } = await app.open();
  const names = app.names();
  const s = app.out.style;

  // Before the first server or model digest of a chat (the SDK remembers each yes per chat and mode).
  const confirm = async (d: DigestDisclosure): Promise<boolean> => {
    const labels = (await Promise.all(d.chatIds.map((id) => app.label(id)))).map((l) => safe(l)).join(', ');
    const asking = !plan.yes;
    if (asking && !stdinIsTty()) {
      throw new CliError('digest_disclosure_required', `the first ${d.on} digest of ${labels} needs your yes first: ${d.text}`, ExitCode.usage, 'run it on a terminal to read and answer, or add --yes');
    }
    if (!app.out.json || asking) process.stderr.write(`${app.out.errStyle.yellow(`Before the first ${d.on} digest of ${labels}:`)}\n  ${safe(d.text)}\n`);
    if (!asking) return true;
    const answer = await ask(`Send ${d.chatIds.length === 1 ? 'it' : 'them'}? [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  };

  let outcomes: DigestOutcome[];
  let chatIds: string[];
  try {
    if (plan.resume !== undefined) {
      const pending = store.data.pendingDigests[plan.resume];
      if (pending === undefined) {
        const saved = Object.keys(store.data.pendingDigests);
        throw new CliError(
          'digest_not_pending',
          `no timed-out digest ${plan.resume} in profile "${app.profile}"`,
          ExitCode.notFound,
          saved.length ? `saved: ${saved.join(', ')}` : 'a digest that timed out says its request id',
        );
      }
      const sealedTo = (pending as Partial<PendingDigest>).serviceIdentityKey;
      app.out.note(`Waiting for digest ${plan.resume}${typeof sealedTo === 'string' ? ` (sealed to the digest service key ${digestKeyFingerprint(sealedTo)})` : ''}…`);
      try {
        outcomes = await client.digests.resume(pending as PendingDigest, { timeoutMs: plan.timeoutMs });
      } catch (err) {
        // Settled (failed or expired) on the server: nothing left to resume.
        if (err instanceof DigestFailedError && !isTimeout(err)) await store.removePendingDigest(plan.resume);
        throw err;
      }
      await store.removePendingDigest(plan.resume);
      chatIds = outcomes.map((x) => x.chatId);
    } else {
      if (refs.length) {
        chatIds = [];
        for (const r of refs) chatIds.push((await app.chat(r)).chatId);
      } else {
        chatIds = await client.digests.offered(await client.unread({ limit: 500 }), { on: plan.mode.on, ...(plan.minUnread !== undefined ? { minUnread: plan.minUnread } : {}) });
      }
      outcomes = [];
      if (chatIds.length) {
        if (plan.mode.on === 'device') app.out.note(whoReads(plan.mode));
        outcomes = await client.digest(chatIds, {
          on: plan.mode.on,
          ...(plan.mode.on === 'model' ? { model: plan.mode.model } : {}),
          ...(plan.minUnread !== undefined ? { minUnread: plan.minUnread } : {}),
          ...(key ? { serviceIdentityKey: key.key } : {}),
          confirm,
          names,
          timeoutMs: plan.timeoutMs,
        });
      }
    }
  } catch (err) {
    const timedOut = timedOutRequest(err);
    if (timedOut) {
      await store.savePendingDigest(timedOut.requestId, timedOut.pending);
      throw new CliError(
        'digest_timeout',
        `no digest within ${plan.timeoutMs / 1000} s; request ${timedOut.requestId} is saved in profile "${app.profile}"`,
        ExitCode.error,
        `pick it up later: bil --profile ${app.profile} digest --resume ${timedOut.requestId}`,
      );
    }
    throw err;
  }

  const labels = new Map<string, string>();
  for (const id of chatIds) labels.set(id, await app.label(id));
  // What left this machine, each time (the question came only before the first).
  const sent = outcomes.filter((x) => x.kind === 'summary' && x.on !== 'device').map((x) => safe(labels.get(x.chatId) ?? x.chatId));
  if (sent.length && plan.mode.on !== 'device') app.out.note(`Sent off this machine for ${sent.join(', ')}. ${whoReads(plan.mode, keyInfo)}`);
  const json = outcomes.map((x) => ({ ...x, label: labels.get(x.chatId), ...(x.kind === 'messages' ? { messages: x.messages.map((m: HistoryMessage) => messageJson(m, names)) } : {}) }));
  app.out.result(json, () => {
    if (chatIds.length === 0) return ['No chat has enough unread messages for a digest (bil unread lists them; bil digest <chat> asks for one anyway).'];
    const lines: string[] = [];
    for (const x of outcomes) {
      if (lines.length) lines.push('');
      lines.push(...digestLines(x, labels.get(x.chatId) ?? shortId(x.chatId), names, s));
    }
    return lines;
  });
}

function isTimeout(err: DigestFailedError): boolean {
  return err.reason === 'client_timeout';
}

/** A client-side timeout the SDK can resume: its request id and JSON `pending`. */
function timedOutRequest(err: unknown): { requestId: string; pending: PendingDigest } | null {
  if (!(err instanceof DigestFailedError) || !isTimeout(err)) return null;
  return err.requestId && err.pending ? { requestId: err.requestId, pending: err.pending } : null;
}

// ---- the key ----------------------------------------------------------------------

export async function digestKeyShow(app: App, o: { digestKey?: string }): Promise<void> {
  const key = await app.digestKey(o.digestKey);
  const url = app.url;
  const s = app.out.style;
  app.out.result(
    key ? { url, key: key.key, fingerprint: digestKeyFingerprint(key.key), source: key.source, from: key.from } : { url, key: null, fingerprint: null, source: null, from: null },
    () =>
      key
        ? [
            `Digest service key for ${url} ${s.dim(`(from ${key.from})`)}`,
            `  ${s.bold(key.key)}`,
            `  fingerprint ${s.bold(digestKeyFingerprint(key.key))}`,
            s.dim('Compare the fingerprint with the one the server\'s operator publishes (npm start prints the development key\'s).'),
          ]
        : [`No digest service key for ${url}.`, s.dim('Set it: bil digest key set <key> (or BIL_DIGEST_SERVICE_KEY). Without it only on-device and model digests work.')],
  );
}

export async function digestKeySet(app: App, value: string): Promise<void> {
  const key = checkDigestKey(value);
  const url = await app.resolveServer();
  const before = serverEntry(await readServers(app.root), url)?.digest_service_key;
  await updateServers(app.root, [url], { digest_service_key: key });
  const fp = digestKeyFingerprint(key);
  const s = app.out.style;
  const overridden = app.env('BIL_DIGEST_SERVICE_KEY');
  app.out.result({ url, key, fingerprint: fp, file: serversPath(app.root), replaced: typeof before === 'string' && before !== key ? before : null }, () => [
    `Digest service key for ${url} saved in ${serversPath(app.root)}`,
    `  fingerprint ${s.bold(fp)}`,
    ...(typeof before === 'string' && before !== key ? [s.yellow(`  it replaces ${before}: server digests are now sealed to the new key only`)] : []),
    ...(overridden ? [s.yellow('  BIL_DIGEST_SERVICE_KEY is set and takes precedence over this file')] : []),
  ]);
}

// ---- consent and the group setting ------------------------------------------------

export async function digestConsent(app: App, ref: string, choice: string): Promise<void> {
  if (choice !== 'include' && choice !== 'exclude') throw usage('say include or exclude');
  const { client } = await app.open();
  const chat = await app.chat(ref);
  const res = await client.digests.setConsent(chat.chatId, choice === 'include');
  const label = chatLabel(chat, app.names());
  app.out.result({ chatId: chat.chatId, label, include: res.include, version: res.version }, () => [
    choice === 'include'
      ? `Your messages in ${safe(label)} may be in other members' server and model digests again (signed by this device).`
      : `Your messages in ${safe(label)} are left out of other members' server and model digests (signed by this device): their clients leave them out, and the digest service drops them too.`,
    ...(choice === 'exclude' ? [app.out.style.dim('On-device digests on their own machines still include them, as reading does.')] : []),
  ]);
}

export async function chatDigests(app: App, ref: string, setting: string): Promise<void> {
  if (setting !== 'on' && setting !== 'off') throw usage('say on or off');
  const { client } = await app.open();
  const chat = await app.chat(ref);
  if (chat.type !== 'group') throw usage('digests on|off is a group setting (in a personal chat: bil digest consent <chat> exclude)');
  const { epoch } = await client.chats.setDigests(chat.chatId, setting === 'on');
  const label = chatLabel(chat, app.names());
  app.out.result({ chatId: chat.chatId, label, digests: setting, epoch }, () => [
    setting === 'on'
      ? `Digests allowed in ${safe(label)} (signed in key epoch ${epoch}): members may send its messages to the digest service or their own model.`
      : `Digests switched off in ${safe(label)} (signed in key epoch ${epoch}): members' clients send none of its messages to the digest service or a model; on-device digests still work.`,
  ]);
}
