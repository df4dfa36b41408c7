// Issue 12, "Why" 9: group titles are stored and published in plain text
// (chats.title, chat events, NATS chat.created). Step 8: the title travels
// encrypted under the epoch key (inside the signed record); members read it,
// the server never sees it: not in any request or answer through the
// gateway, not in any database table, not on NATS.
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitUntil } from '@bil/testkit';
import { chatKnowsDevices, cli, registerAll, unique, type Person } from '../harness/clients.js';
import { startProxy, type MaliciousGateway } from '../harness/proxy.js';

/** Rows of every table in the system's database whose text (or bytea hex) contains `needle`. */
async function rowsContaining(needle: string): Promise<string[]> {
  const db = new pg.Client({ connectionString: inject('databaseUrl') });
  await db.connect();
  try {
    const { rows: tables } = await db.query<{ s: string; t: string }>(
      "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    );
    const hex = Buffer.from(needle).toString('hex');
    const found: string[] = [];
    for (const { s, t } of tables) {
      const q = `SELECT x::text AS row FROM "${s.replace(/"/g, '""')}"."${t.replace(/"/g, '""')}" AS x WHERE x::text LIKE $1 OR x::text LIKE $2 LIMIT 3`;
      const { rows } = await db.query<{ row: string }>(q, [`%${needle}%`, `%${hex}%`]);
      for (const r of rows) found.push(`${s}.${t}: ${r.row.slice(0, 200)}`);
    }
    return found;
  } finally {
    await db.end();
  }
}

describe('the group title is not the server\'s to read', () => {
  let proxy: MaliciousGateway;
  let nats: NatsConnection;
  const published: { subject: string; data: string }[] = [];
  let alice: Person;
  let bob: Person;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    nats = await connect({ servers: inject('natsUrl') });
    const sub = nats.subscribe(`${inject('natsPrefix')}>`);
    void (async () => {
      for await (const m of sub) published.push({ subject: m.subject, data: m.string() });
    })();
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
  });
  afterAll(async () => {
    await nats?.drain();
    await proxy?.close();
  });

  it('created with the SDK: members read the title, the server sees it nowhere', async () => {
    const title = `Surprise for Carol ${randomBytes(6).toString('hex')}`;
    const chat = await alice.client.chats.createGroup({ title, members: [bob.userId] });
    await alice.client.messages.send(chat.chatId, 'shh');
    await waitUntil('chat.created on NATS', () => published.some((p) => p.subject.endsWith('chat.created') && p.data.includes(chat.chatId)));

    expect((await bob.client.chats.get(chat.chatId)).title).toBe(title);
    expect(proxy.log.some((x) => x.forwardedBody.includes(chat.chatId))).toBe(true); // the scan below looked at the creation
    expect(proxy.log.filter((x) => x.forwardedBody.includes(title)).map((x) => `${x.method} ${x.path}`)).toEqual([]);
    expect(proxy.log.filter((x) => x.clientBody.includes(title)).map((x) => `answer to ${x.method} ${x.path}`)).toEqual([]);
    expect(published.filter((p) => p.data.includes(title)).map((p) => p.subject)).toEqual([]);
    expect(await rowsContaining(title)).toEqual([]);
  });

  it('created with the CLI: the same', async () => {
    const bil = cli(proxy.url);
    try {
      expect((await bil('register', unique('dora'))).code).toBe(0);
      const dora = (await bil.json('whoami')).json as { userId: string; deviceId: string };
      await chatKnowsDevices(inject('databaseUrl'), [dora.deviceId]);
      const title = `Dora's secret plan ${randomBytes(6).toString('hex')}`;
      const r = await bil.json('chat', 'create', '--group', title, '--members', bob.userId);
      expect(r.code, r.stderr).toBe(0);
      const chatId = (r.json as { chatId: string }).chatId;
      expect((await bob.client.chats.get(chatId)).title).toBe(title);
      expect(proxy.log.filter((x) => x.forwardedBody.includes(title) || x.clientBody.includes(title)).map((x) => `${x.method} ${x.path}`)).toEqual([]);
      expect(await rowsContaining(title)).toEqual([]);
    } finally {
      bil.cleanup();
    }
  });
});
