// `npm run demo`: bil-message end to end against a running system (`npm start`;
// the gateway from BIL_URL, default http://localhost:8080). Three people, each
// with their own client (@bil/sdk, keys in memory: "their device"), register;
// a personal chat and a group; live delivery with typing and read receipts;
// one member removed from the group (new key epoch) and unable to read what
// follows; a burst of unread messages and a digest by the digest service, then
// the same digest made on the device, side by side with what left the device
// for each. Every step prints what the people see beside what the server
// stores: ciphertext, signed headers and keys wrapped to devices, never a
// readable message. The digest service's key comes from configuration, as
// bil takes it (BIL_DIGEST_SERVICE_KEY, else the servers.json npm start
// writes, else the public development key), never from the server.
// Exits 0 when every step did what it says, 1 otherwise. (Past 400 lines: it
// is one story read top to bottom; split into modules it would read worse.)
import { randomBytes } from 'node:crypto';

const base = (process.env.BIL_URL ?? 'http://localhost:8080').replace(/\/+$/, '');
const colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const sgr = (a, b) => (s) => (colour ? `\u001b[${a}m${s}\u001b[${b}m` : String(s));
const bold = sgr(1, 22);
const dim = sgr(2, 22);
const green = sgr(32, 39);
const red = sgr(31, 39);
const cyan = sgr(36, 39);
const yellow = sgr(33, 39);

let sdk;
try {
  sdk = await import('@bil/sdk/node');
} catch {
  console.error('demo: the SDK is not built yet: run `npm run build` (npm start builds everything) first');
  process.exit(1);
}
const { BilClient, MemoryKeyStore, formatSafetyNumber } = sdk;

// ---- output: two columns, people on the left, the server on the right ---------------

const width = Math.max(100, Math.min(process.stdout.columns || 120, 160));
const col = Math.floor((width - 3) / 2);
// eslint-disable-next-line no-control-regex
const visible = (s) => s.replace(/\u001b\[[0-9;]*m/g, '').length;

function wrap(text, w) {
  const out = [];
  for (const para of String(text).split('\n')) {
    const indent = /^ */.exec(para)[0];
    const room = w - indent.length;
    let line = '';
    for (const word of para.trimStart().split(' ')) {
      if (line && visible(line) + 1 + visible(word) > room) {
        out.push(indent + line);
        line = '';
      }
      let rest = word;
      while (visible(rest) > room) {
        out.push(indent + rest.slice(0, room));
        rest = rest.slice(room);
      }
      line = line ? `${line} ${rest}` : rest;
    }
    out.push(indent + line);
  }
  return out;
}

/** One step: what people see (left) beside what the server stores (right). */
function side(left, right, divider = '│') {
  const l = left.flatMap((t) => wrap(t, col));
  const r = right.flatMap((t) => wrap(t, col));
  for (let i = 0; i < Math.max(l.length, r.length); i++) {
    const a = l[i] ?? '';
    console.log(`${a}${' '.repeat(Math.max(0, col - visible(a)))} ${dim(divider)} ${r[i] ?? ''}`);
  }
}

function section(title) {
  console.log('');
  console.log(bold(`── ${title} ${'─'.repeat(Math.max(0, width - visible(title) - 4))}`));
  side([dim('what the people see')], [dim('what the server stores (ciphertext only)')]);
}

const excerpt = (b64, n = 32) => `${b64.slice(0, n)}… (${b64.length} chars, base64url)`;

// ---- checks --------------------------------------------------------------------------

class DemoFailure extends Error {}
function check(ok, what) {
  if (!ok) throw new DemoFailure(what);
}

function waitFor(emitter, type, predicate, what, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new DemoFailure(`${what}: nothing within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const off = emitter.on(type, (e) => {
      if (!predicate(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

// ---- the digest service key: configuration, never the server's word ----------------------

async function digestServiceKey() {
  const { digestKeyFingerprint, readServers, serverEntry, serversPath } = await import('../apps/cli/dist/servers.js');
  const { configDir } = await import('../apps/cli/dist/config.js');
  let found;
  if (process.env.BIL_DIGEST_SERVICE_KEY) {
    found = { key: process.env.BIL_DIGEST_SERVICE_KEY, from: 'BIL_DIGEST_SERVICE_KEY' };
  } else {
    const dir = configDir(process.env);
    const entry = serverEntry(await readServers(dir), base);
    if (typeof entry?.digest_service_key === 'string') {
      found = { key: entry.digest_service_key, from: serversPath(dir) };
    } else {
      // What npm start uses unless DIGEST_SERVICE_IDENTITY_SEED is set.
      const { serviceKey } = await import('../services/digest/dist/service-key.js');
      found = { key: serviceKey({ NODE_ENV: 'development' }).key, from: 'the public development key (services/digest/src/config.ts)' };
    }
  }
  return { ...found, fingerprint: digestKeyFingerprint(found.key) };
}

let digestKey;

/** The SDK's disclosure (what leaves the device in that mode), as one line. */
function disclosureText(d) {
  const text = typeof d === 'string' ? d : (d?.text ?? '');
  return text.replace(/\s+/g, ' ').trim();
}

// ---- people ----------------------------------------------------------------------------

const suffix = randomBytes(2).toString('hex');
const PASSWORD = 'correct horse battery staple';

/** A person: their own client and key store, and a log of what their client sent to the server. */
async function person(name) {
  const store = new MemoryKeyStore();
  const sent = [];
  const fetchAndLog = async (url, init = {}) => {
    const entry = { method: init.method ?? 'GET', path: new URL(url).pathname, body: undefined };
    if (init.body && typeof init.body === 'string') {
      try {
        entry.body = JSON.parse(init.body);
      } catch {
        // not JSON
      }
    }
    sent.push(entry);
    return fetch(url, init);
  };
  const client = new BilClient({ baseUrl: base, keyStore: store, fetch: fetchAndLog, digest: { serviceIdentityKey: digestKey.key } });
  const username = `${name}_${suffix}`;
  const account = await client.register({ username, password: PASSWORD, deviceName: `${name}'s laptop` });
  const lastSent = (method, pattern) => [...sent].reverse().find((r) => r.method === method && pattern.test(r.path));
  /** A raw API call with this person's token: what the server hands out. */
  const api = async (path) => {
    const token = (await store.load()).tokens.accessToken;
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, json: await res.json().catch(() => null) };
  };
  return { name, username, client, store, account, sent, lastSent, api, live: null };
}

async function storedMessage(p, chatId, seq) {
  const res = await p.api(`/v1/chats/${chatId}/messages?after=${seq - 1}&limit=1`);
  check(res.status === 200 && res.json.messages[0]?.seq === seq, `the server returns message ${seq}`);
  return res.json.messages[0];
}

function envelopeLines(m, wrappedFor) {
  const h = m.envelope.header;
  return [
    `message seq ${m.seq}, from device ${m.sender_device_id.slice(0, 8)}`,
    `  header: scheme ${h.scheme}, epoch ${h.epoch}, counter ${h.counter}, signed by the sender's device key`,
    `  ciphertext: ${excerpt(m.envelope.ciphertext)}`,
    `  ${wrappedFor}`,
  ];
}

async function goLive(p) {
  p.live = p.client.live();
  p.seen = [];
  p.live.on('message', (m) => p.seen.push(m));
  await waitFor(p.live, 'synced', () => true, `${p.name}'s live connection`);
}

// ---- the story -------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  console.log(bold('bil-message demo') + dim(`  ${base}`));
  console.log(dim('Alice, Bob and Carol each run their own client here; keys are made and kept on "their device" (memory).'));
  const up = await fetch(`${base}/readyz`).catch(() => null);
  if (!up || !up.ok) {
    console.error(red(`demo: no bil-message system answers at ${base}: start one with \`npm start\` (or set BIL_URL)`));
    process.exit(1);
  }
  digestKey = await digestServiceKey();
  console.log(dim(`Digest service key ${digestKey.fingerprint} (fingerprint), from ${digestKey.from}: server digests are sealed to it only.`));

  // 1. Register
  section('1. Three people register');
  const [alice, bob, carol] = await Promise.all([person('alice'), person('bob'), person('carol')]);
  const people = [alice, bob, carol];
  const names = Object.fromEntries(people.map((p) => [p.account.userId, p.name]));
  const reg = alice.lastSent('POST', /^\/v1\/auth\/devices$/).body;
  side(
    people.map((p) => `${bold(p.username)} registered: device keys (RSA-OAEP + Ed25519) and an account identity key, made on her/his device`),
    [
      `per device: public keys and a certificate signed by the account identity key, e.g. ${alice.name}'s:`,
      `  encryption key ${excerpt(reg.encryption_key, 24)}`,
      `  certificate ${excerpt(reg.certificate, 24)}`,
      'no private key ever leaves a device',
    ],
  );

  // 2. Safety numbers
  section('2. Alice and Bob compare safety numbers');
  const aBob = await alice.client.contacts.find(bob.username);
  const bAlice = await bob.client.contacts.find(alice.username);
  const cAlice = await carol.client.contacts.find(alice.username);
  await carol.client.contacts.devices(cAlice.userId);
  const snA = await alice.client.contacts.safetyNumber(aBob.userId);
  const snB = await bob.client.contacts.safetyNumber(bAlice.userId);
  check(snA === snB, 'alice and bob compute the same safety number');
  check(await alice.client.contacts.verifySafetyNumber(aBob.userId, snB), 'alice verifies bob');
  side(
    [`alice sees: ${formatSafetyNumber(snA)}`, `bob sees:   ${formatSafetyNumber(snB)}`, green('✔ the same: each has the other\'s real identity key (pinned)')],
    ['the directory: each user\'s identity key and certified devices', 'a server that swapped a key would change the number'],
  );

  // 3. Personal chat, live
  section('3. A personal chat, delivered live');
  await Promise.all([goLive(alice), goLive(bob)]);
  const personal = await alice.client.chats.createPersonal(aBob.userId);
  const typing = waitFor(bob.live, 'typing', (t) => t.chatId === personal.chatId && t.active, 'bob sees alice typing');
  alice.live.typing(personal.chatId);
  await typing;
  const text1 = 'Hi Bob! Lunch on Friday?';
  const t0 = Date.now();
  const arrived = waitFor(bob.live, 'message', (m) => m.chatId === personal.chatId, 'bob receives the message live');
  const sent1 = await alice.client.messages.send(personal.chatId, text1);
  const got1 = await arrived;
  const ms = Date.now() - t0;
  check(got1.text === text1 && got1.senderUserId === alice.account.userId, 'bob decrypts what alice sent');
  const receipt = waitFor(alice.live, 'receipt', (r) => r.chatId === personal.chatId && r.userId === bob.account.userId, 'alice sees bob\'s read receipt');
  bob.live.read(personal.chatId, got1.seq);
  await receipt;
  const reply = 'Sure, 12:30 at the usual place.';
  const arrived2 = waitFor(alice.live, 'message', (m) => m.chatId === personal.chatId && m.seq === sent1.seq + 1, 'alice receives bob\'s reply live');
  await bob.client.messages.send(personal.chatId, reply);
  check((await arrived2).text === reply, 'alice decrypts bob\'s reply');
  const body1 = alice.lastSent('POST', /\/messages$/).body;
  const stored1 = await storedMessage(bob, personal.chatId, sent1.seq);
  check(!JSON.stringify(stored1).includes('Lunch'), 'the server holds no plaintext');
  side(
    [
      `bob sees "alice is typing…"`,
      `alice → bob: "${text1}"`,
      `bob's client decrypts it, live after ${ms} ms: ${cyan(`alice: ${got1.text}`)}`,
      `alice sees: ${dim('read by bob')}`,
      `bob → alice: "${reply}" ${dim('(alice sees it live)')}`,
    ],
    envelopeLines(stored1, `content key wrapped to ${body1.wrapped_keys.length} devices (alice's and bob's), RSA-OAEP, e.g. ${excerpt(body1.wrapped_keys[0].wrapped_key, 16)}`),
  );

  // 4. Group
  section('4. A group: one key per epoch, wrapped to every member\'s devices');
  await goLive(carol);
  const aCarol = await alice.client.contacts.find(carol.username);
  const group = await alice.client.chats.createGroup({ title: `Weekend trip ${suffix}`, members: [aBob.userId, aCarol.userId] });
  const genesis = alice.lastSent('POST', /^\/v1\/chats$/).body;
  const text2 = 'Who brings the tent?';
  const bobGets = waitFor(bob.live, 'message', (m) => m.chatId === group.chatId, 'bob receives the group message');
  const carolGets = waitFor(carol.live, 'message', (m) => m.chatId === group.chatId, 'carol receives the group message');
  const sent2 = await alice.client.messages.send(group.chatId, text2);
  const [b2, c2] = await Promise.all([bobGets, carolGets]);
  check(b2.text === text2 && c2.text === text2, 'bob and carol decrypt the group message');
  const stored2 = await storedMessage(alice, group.chatId, sent2.seq);
  side(
    [`alice creates "${group.title}" with bob and carol`, `alice: "${text2}"`, `bob sees:   ${cyan(`alice: ${b2.text}`)}`, `carol sees: ${cyan(`alice: ${c2.text}`)}`],
    [
      `epoch 1 record signed by alice's device, its key wrapped to ${genesis.epoch_keys.length} devices`,
      ...envelopeLines(stored2, 'no per-message keys: it is encrypted under the epoch key'),
    ],
  );

  // 5. Remove carol
  section('5. Carol is removed: a new key she never gets');
  const removed = waitFor(carol.live, 'membership', (e) => e.chatId === group.chatId && e.event === 'member_removed', 'carol is told she was removed');
  const rotation = await alice.client.chats.members.remove(group.chatId, aCarol.userId);
  await removed;
  const epochBody = alice.lastSent('DELETE', /\/members\//).body;
  const carolDevice = carol.account.deviceId;
  check(!epochBody.epoch_keys.some((k) => k.device_id === carolDevice), 'the new epoch key is not wrapped to carol\'s device');
  const carolSeenBefore = carol.seen.length;
  const text3 = 'Carol\'s surprise party is on Saturday, don\'t tell her!';
  const bobGets3 = waitFor(bob.live, 'message', (m) => m.chatId === group.chatId && m.text === text3, 'bob receives the message after the removal');
  const sent3 = await alice.client.messages.send(group.chatId, text3);
  const b3 = await bobGets3;
  await new Promise((r) => setTimeout(r, 1000));
  check(carol.seen.length === carolSeenBefore, 'carol\'s live connection gets nothing after her removal');
  const carolAsks = await carol.api(`/v1/chats/${group.chatId}/messages?after=0`);
  check(carolAsks.status === 404, 'the server refuses carol the group');
  const stored3 = await storedMessage(alice, group.chatId, sent3.seq);
  const forced = await carol.client.messages.decrypt(stored3);
  check(!forced.ok, 'carol cannot decrypt the message even given the ciphertext');
  side(
    [
      `alice removes carol: new key epoch ${rotation.epoch}`,
      `alice: "${text3}"`,
      `bob sees:   ${cyan(`alice: ${b3.text}`)}`,
      `carol sees: nothing live; asking for the history gets ${carolAsks.status} ${carolAsks.json?.error?.code}`,
      `carol's client, handed the ciphertext anyway: ${red('cannot decrypt')}`,
    ],
    [
      `epoch ${rotation.epoch} record without carol, key wrapped to ${epochBody.epoch_keys.length} devices (alice's, bob's; not carol's)`,
      ...envelopeLines(stored3, `encrypted under epoch ${stored3.envelope.header.epoch}, whose key carol never had`),
    ],
  );

  // 6. Unread burst and a digest
  section('6. Bob is away: a burst of unread messages, then a digest');
  await bob.client.messages.markRead(group.chatId, sent3.seq);
  bob.live.close();
  await new Promise((r) => setTimeout(r, 300));
  const policy = await bob.client.digests.policy(group.chatId);
  const burst = [
    'Plan for the weekend trip: we leave Saturday at 8 from the station.',
    'I booked the campsite at the lake for two nights.',
    'The weather forecast says sun on Saturday and rain on Sunday afternoon.',
    'Bob, can you bring the big tent and the camping stove?',
    'We need food for two days: pasta, bread, fruit and coffee.',
    'I will buy the food on Friday evening.',
    'Bob, could you check the train tickets for Saturday morning?',
    'The lake is good for swimming, bring swimwear.',
    'Parking at the campsite costs 5 euros a day.',
    'Remember the sleeping bags, the nights are cold.',
    'I will bring the first aid kit and the map.',
    'We decided to hike to the waterfall on Saturday afternoon.',
    'The hike to the waterfall takes about three hours.',
    'Bob, please bring your camera for the waterfall.',
    'Dinner on Saturday: pasta cooked on the camping stove.',
    'Sunday morning we pack up before the rain.',
    'The train back leaves Sunday at 15:10.',
    'Budget: about 60 euros each for campsite, food and train.',
    'I will send the campsite booking confirmation tonight.',
    'Bob, can you tell me by Thursday if you need a sleeping bag?',
    'The campsite has showers and a small shop.',
    'We can rent canoes at the lake for 10 euros an hour.',
    'Let us meet at the station café at 7:45 on Saturday.',
    'Looking forward to the weekend trip!',
  ];
  const n = Math.min(200, Math.max(burst.length, policy.minUnread + 2));
  for (let i = 0; i < n; i++) await alice.client.messages.send(group.chatId, burst[i % burst.length]);
  const unread = await bob.client.unread({ messagesPerChat: 3 });
  const inGroup = unread.chats.find((c) => c.chatId === group.chatId);
  check(inGroup && inGroup.unreadCount === n, `bob has ${n} unread messages in the group`);
  const offered = await bob.client.digests.offered(unread);
  check(offered.includes(group.chatId), 'bob is offered a digest of the group');
  // Before the first server digest of a chat the client says what leaves the device and asks; Bob says yes.
  let disclosure = null;
  const [outcome] = await bob.client.digest([group.chatId], {
    names,
    timeoutMs: 120_000,
    confirm: (d) => {
      disclosure = d;
      return true;
    },
  });
  check(outcome.kind === 'summary', `the digest is a summary (got ${outcome.kind})`);
  check(disclosure !== null, 'bob is told what leaves his device before the first server digest');
  const request = bob.lastSent('POST', /^\/v1\/digests$/).body.transcripts[0];
  const digestRow = (await bob.api(`/v1/digests/${bob.lastSent('POST', /^\/v1\/digests$/).body.request_id}`)).json.digest;
  const sealedResult = digestRow.results[0].sealed;
  const method = (o) => (o.method === 'llm' ? 'language model' : 'built-in summariser');
  side(
    [
      `alice sends ${n} messages while bob is away`,
      `bob comes back: ${bold(String(unread.total))} unread, ${inGroup.unreadCount} in ${bold(`#${group.title}`)}; newest: "${inGroup.messages.at(-1)?.text}"`,
      `bob's client, before the first server digest of this chat: ${yellow(`"${disclosureText(disclosure)}"`)} bob: yes`,
      `bob asks the digest service for a digest (${method(outcome)}):`,
      `  ${bold('Topic:')} ${outcome.topic}`,
      ...outcome.keyPoints.slice(0, 3).map((k) => `  - ${k}`),
      ...outcome.actions.slice(0, 3).map((a) => `  ${yellow('→')} ${a.owner ? `${a.owner}: ` : ''}${a.action}`),
    ],
    [
      `${n} envelopes like those above`,
      `bob's device decrypts them and seals the transcript to the digest service's key (${request.sealed.header.kind}, key ${digestKey.fingerprint}, from bob's configuration):`,
      `  ciphertext: ${excerpt(request.sealed.ciphertext)}`,
      'the worker opens it in memory only, and seals the summary to bob\'s device:',
      `  ciphertext: ${excerpt(sealedResult.ciphertext)}`,
    ],
  );

  // 7. The same unread messages summarised on Bob's device: nothing leaves it.
  console.log('');
  const title7 = '7. The same digest on Bob\'s device, beside the digest service\'s';
  console.log(bold(`── ${title7} ${'─'.repeat(Math.max(0, width - visible(title7) - 4))}`));
  const before = bob.sent.length;
  const [local] = await bob.client.digest([group.chatId], { on: 'device', names });
  const during = bob.sent.slice(before);
  check(local.kind === 'summary' && local.on === 'device', `the on-device digest is a summary made on the device (got ${local.kind}${local.on ? `, on ${local.on}` : ''})`);
  check(!during.some((r) => r.method !== 'GET'), 'the on-device digest sends nothing to the server (it only reads the messages, as history does)');
  check(!during.some((r) => /digest/.test(r.path)), 'the on-device digest never calls the digest service');
  side(
    [
      bold(`on bob's device (on: 'device', ${method(local)})`),
      `left the device: nothing (bob's client only fetched the ${n} envelopes, ${during.length} GET requests as history makes; no transcript, no call to the digest service)`,
      `  ${bold('Topic:')} ${local.topic}`,
      ...local.keyPoints.slice(0, 3).map((k) => `  - ${k}`),
    ],
    [
      bold(`by the digest service (on: 'server', ${method(outcome)})`),
      `left the device: the transcript (messages, names, title), sealed to key ${digestKey.fingerprint}: the digest service's operator and its model provider can read it`,
      `  ${bold('Topic:')} ${outcome.topic}`,
      ...outcome.keyPoints.slice(0, 3).map((k) => `  - ${k}`),
    ],
    // Not the people/server divider: both columns are what Bob sees.
    '┆',
  );

  for (const p of people) p.live?.close();
  console.log('');
  console.log(green(`demo: OK in ${((Date.now() - started) / 1000).toFixed(1)} s (users ${people.map((p) => p.username).join(', ')})`));
}

const deadline = setTimeout(() => {
  console.error(red('demo: FAILED: took longer than 5 minutes'));
  process.exit(1);
}, 300_000);
deadline.unref();

try {
  await main();
  process.exit(0);
} catch (err) {
  const what = err instanceof DemoFailure ? err.message : `${err?.name ?? 'Error'}: ${err?.message ?? err}${err?.code ? ` [${err.code}]` : ''}`;
  console.error(red(`demo: FAILED: ${what}`));
  if (process.env.BIL_DEBUG === '1') console.error(err);
  process.exit(1);
}
