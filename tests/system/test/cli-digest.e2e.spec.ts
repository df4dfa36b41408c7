// `bil digest` as people and scripts use it, against the system npm start
// runs (test/global-setup.ts): the digest service key from configuration
// (never the server's word), what leaves the machine said and asked before
// the first server or model digest of a chat, the three modes, members'
// signed opt-outs and the group's signed setting, and a timed-out digest
// saved in the encrypted profile and resumed.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FakeOpenAI, MODEL_SUMMARY } from '@bil/testkit';
import { as, clean, cli, type Cli } from './cli.js';

const url = inject('bilUrl');
const digestKey = inject('digestServiceKey');
const tag = randomBytes(3).toString('hex');
const alice = `alice_d${tag}`;
const bob = `bob_d${tag}`;
const carol = `carol_d${tag}`;
const trip = `Digest trip ${tag}`;
/** A well-formed key that is not the digest service's. */
const OTHER_KEY = Buffer.alloc(32, 9).toString('base64url');
let bil: Cli;

const json = (r: { stdout: string }) => JSON.parse(r.stdout) as Record<string, unknown>[];

beforeAll(async () => {
  bil = cli(url);
  for (const [p, name] of [['alice', alice], ['bob', bob], ['carol', carol]] as const) expect((await bil(as(p, 'register', name))).code).toBe(0);
  expect((await bil(as('alice', 'chat', 'create', '--group', trip, '--members', `${bob},${carol}`))).code).toBe(0);
  expect((await bil(as('bob', 'chat', 'create', '--personal', alice))).code).toBe(0);
  expect((await bil(as('bob', 'send', `@${alice}`, 'hi'))).code).toBe(0);
}, 240_000);

afterAll(() => bil?.cleanup());

describe('bil digest', () => {
  it('takes the digest service key from --digest-key, BIL_DIGEST_SERVICE_KEY or servers.json, never from the server', async () => {
    const none = await bil(as('bob', 'digest', trip));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('[digest_key_not_configured]');
    expect(none.stderr).toContain('bil digest key set <key>');
    expect(json(await bil(as('bob', '--json', 'digest', 'key')))).toMatchObject({ url, key: null });
    expect((await bil(as('bob', 'digest', trip, '--digest-key', 'not-a-key'))).code).toBe(2);

    // A key the service's answer is not signed by: refused before anything is read or sent.
    const wrong = await bil(as('bob', 'digest', trip, '--yes'), { env: { BIL_DIGEST_SERVICE_KEY: OTHER_KEY } });
    expect(wrong.code, wrong.stderr).toBe(7);
    expect(wrong.stderr).toContain('[digest_key_untrusted]');

    const set = await bil(as('bob', 'digest', 'key', 'set', digestKey));
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/fingerprint ([0-9a-f]{4} ){7}[0-9a-f]{4}/);
    expect(JSON.parse(readFileSync(join(bil.configDir, 'servers.json'), 'utf8'))).toEqual({ [url]: { digest_service_key: digestKey } });
    const shown = json(await bil(as('bob', '--json', 'digest', 'key', 'show')));
    expect(shown).toMatchObject({ url, key: digestKey, source: 'servers' });
    expect(json(await bil(as('bob', '--json', 'digest', 'key')))).toMatchObject({ fingerprint: (shown as unknown as { fingerprint: string }).fingerprint });
    expect(json(await bil(as('bob', '--json', 'digest', 'key'), { env: { BIL_DIGEST_SERVICE_KEY: OTHER_KEY } }))).toMatchObject({ key: OTHER_KEY, source: 'env' });
    expect(json(await bil(as('bob', '--json', 'digest', 'key', '--digest-key', OTHER_KEY)))).toMatchObject({ key: OTHER_KEY, source: 'flag' });
  }, 120_000);

  it('says what leaves the machine and asks first; on the device, by the digest service, by your model', async () => {
    const input = Array.from({ length: 24 }, (_, i) => `We leave Saturday at 8; ${bob} brings the big tent (${i + 1})`).join('\n');
    expect((await bil(as('alice', 'send', trip, '--lines'), { input })).stdout).toContain('Sent 24 messages');

    // No terminal and no --yes: nothing is sent.
    const unasked = await bil(as('bob', 'digest'));
    expect(unasked.code).toBe(2);
    expect(unasked.stderr).toContain('[digest_disclosure_required]');
    expect(unasked.stdout).toBe('');

    const local = await bil(as('bob', 'digest', '--on-device'));
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toContain(`#${trip}`);
    expect(local.stdout).toContain('summary of 24 messages (built-in summariser, en) made on this device');
    expect(local.stderr).toContain('nothing leaves it');

    const server = await bil(as('bob', 'digest', '--yes'));
    expect(server.code, server.stderr).toBe(0);
    expect(server.stderr).toContain(`Before the first server digest of #${trip}:`);
    expect(server.stderr).toContain('Whoever operates the digest worker can read them');
    expect(server.stdout).toMatch(/summary of 24 messages \(built-in summariser, en\) by the digest service; seq \d+–\d+/);
    expect(clean(server.stdout + server.stderr)).toBe(true);
    // Asked once per chat and mode: the next one goes without --yes.
    const [d] = json(await bil(as('bob', '--json', 'digest', trip)));
    expect(d).toMatchObject({ kind: 'summary', on: 'server', method: 'extractive', messageCount: 24, excludedCount: 0, label: `#${trip}` });

    const model = await new FakeOpenAI().start();
    try {
      const noKey = await bil(as('bob', 'digest', trip, '--model', model.model, '--model-url', model.url));
      expect(noKey.code).toBe(2);
      expect(noKey.stderr).toContain('BIL_MODEL_API_KEY');
      const byModel = await bil(as('bob', '--json', 'digest', trip, '--model', model.model, '--model-url', model.url, '--yes'), { env: { BIL_MODEL_API_KEY: model.apiKey } });
      expect(byModel.code, byModel.stderr).toBe(0);
      expect(json(byModel)[0]).toMatchObject({ kind: 'summary', on: 'model', method: 'llm', topic: MODEL_SUMMARY.topic, messageCount: 24 });
      expect(model.seen[0]).toMatchObject({ authorization: `Bearer ${model.apiKey}`, model: model.model });
      expect(JSON.stringify(model.seen[0]!.messages)).toContain('brings the big tent (24)');
    } finally {
      await model.stop();
    }

    // Digests don't mark anything read; below the client's threshold: the messages instead.
    expect(JSON.parse((await bil(as('bob', '--json', 'unread'))).stdout).chats.find((c: { label: string }) => c.label === `#${trip}`).unreadCount).toBe(24);
    expect(json(await bil(as('bob', '--json', 'digest', trip, '--min-unread', '30')))[0]).toMatchObject({ kind: 'messages' });
    expect(json(await bil(as('alice', '--json', 'digest', `@${bob}`, '--on-device')))[0]).toMatchObject({ kind: 'messages' });
  }, 240_000);

  it('leaves out a member who opted out (signed), and nothing leaves a group whose admins switched digests off', async () => {
    const optOut = await bil(as('carol', 'digest', 'consent', trip, 'exclude'));
    expect(optOut.code, optOut.stderr).toBe(0);
    expect(optOut.stdout).toContain('left out of other members\' server and model digests');
    const input = Array.from({ length: 21 }, (_, i) => `Carol's private note ${i + 1}`).join('\n');
    expect((await bil(as('carol', 'send', trip, '--lines'), { input })).code).toBe(0);

    const [server] = json(await bil(as('bob', '--json', 'digest', trip)));
    expect(server).toMatchObject({ kind: 'summary', on: 'server', messageCount: 24, excludedCount: 21 });
    const [local] = json(await bil(as('bob', '--json', 'digest', trip, '--on-device')));
    expect(local).toMatchObject({ kind: 'summary', on: 'device', messageCount: 45, excludedCount: 0 });

    const notAdmin = await bil(as('bob', 'chat', 'digests', trip, 'off'));
    expect(notAdmin.code).toBe(1);
    expect(notAdmin.stderr).toContain('[not_an_admin]');
    expect((await bil(as('alice', 'chat', 'digests', `@${bob}`, 'off'))).code).toBe(2);
    const off = await bil(as('alice', 'chat', 'digests', trip, 'off'));
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/Digests switched off in #.* \(signed in key epoch \d+\)/);
    const refused = await bil(as('bob', 'digest', trip));
    expect(refused.code, refused.stderr).toBe(0);
    expect(refused.stdout).toContain('the group\'s admins switched digests off');
    expect(json(await bil(as('bob', '--json', 'digest', trip, '--on-device')))[0]).toMatchObject({ kind: 'summary', on: 'device' });

    expect((await bil(as('alice', 'chat', 'digests', trip, 'on'))).code).toBe(0);
    expect((await bil(as('carol', 'digest', 'consent', trip, 'include'))).code).toBe(0);
    expect(json(await bil(as('bob', '--json', 'digest', trip)))[0]).toMatchObject({ kind: 'summary', messageCount: 45, excludedCount: 0 });
  }, 240_000);

  it('saves a digest that timed out in the encrypted profile, and resumes it', async () => {
    // A gateway whose digest answers stay "pending" while `hold` is on.
    let hold = true;
    const proxy = await holdingProxy(url, () => hold);
    try {
      const viaProxy = { env: { BIL_URL: proxy.url, BIL_DIGEST_SERVICE_KEY: digestKey } };
      const timedOut = await bil(as('bob', 'digest', trip, '--timeout', '2'), viaProxy);
      expect(timedOut.code, timedOut.stderr).toBe(1);
      expect(timedOut.stderr).toContain('[digest_timeout]');
      const requestId = /digest --resume ([0-9a-f-]{36})/.exec(timedOut.stderr)?.[1];
      expect(requestId, timedOut.stderr).toBeDefined();
      // Kept inside the encrypted key store: not even the request id is readable on disk.
      expect(readFileSync(join(bil.configDir, 'profiles', 'bob', 'keys.json'), 'utf8')).not.toContain(requestId);

      hold = false;
      const resumed = await bil(as('bob', '--json', 'digest', '--resume', requestId!), viaProxy);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(json(resumed)[0]).toMatchObject({ kind: 'summary', on: 'server', messageCount: 45 });
      const again = await bil(as('bob', 'digest', '--resume', requestId!), viaProxy);
      expect(again.code).toBe(4);
      expect(again.stderr).toContain('[digest_not_pending]');
    } finally {
      await new Promise((r) => proxy.server.close(r));
    }
  }, 180_000);
});

/** Forwards to the gateway; while `held()`, a digest's status reads "pending" with no results. */
async function holdingProxy(target: string, held: () => boolean): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
        const body = chunks.length ? Buffer.concat(chunks) : undefined;
        const answer = await fetch(`${target}${req.url}`, { method: req.method, headers, ...(body ? { body } : {}) });
        let text = await answer.text();
        if (held() && /^\/v1\/digests(\/[^/?]+)?$/.test(req.url ?? '') && answer.ok) {
          const d = JSON.parse(text) as { digest: { status: string; results: unknown[] } };
          d.digest.status = 'pending';
          d.digest.results = [];
          text = JSON.stringify(d);
        }
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(text);
      })().catch(() => {
        res.writeHead(502);
        res.end();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
