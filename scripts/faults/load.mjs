// The campaign's clients: a few SDK users (one device each), a 1:1 chat per
// pair and a group of everyone, every user connected live (LiveClient through
// the gateway's WebSocket), and a steady send load from their BilClients,
// which retry through outages as the SDK does (same message id). Records
// every HTTP error status and network failure the clients saw, every
// WebSocket close and error frame, every send and every message each device
// received (live or through the SDK's catch-up).
import { randomBytes } from 'node:crypto';
import { BilClient, MemoryKeyStore } from '@bil/sdk';

const PASSWORD = 'correct horse battery staple';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Load {
  /** @type {{ name: string, client: BilClient, userId: string, live?: any, state: string, got: Map<number, number[]>, lastSeq: Map<string, number>, orderErrors: number }[]} */
  users = [];
  /** @type {{ chatId: string, kind: string, members: number[] }[]} */
  chats = [];
  /** @type {{ n: number, sender: number, chat: number, startedAt: number, ackedAt?: number, seq?: number, error?: string }[]} */
  sends = [];
  /** Client-visible failures: { at, what }. */
  seen = [];
  #timer;
  #n = 0;

  constructor(baseUrl) {
    this.baseUrl = baseUrl;
  }

  /** A fetch that notes every error status (with the error code and Retry-After) and every failed request. */
  #fetch = async (input, init) => {
    try {
      const res = await fetch(input, init);
      if (res.status >= 400) {
        let code = '';
        try {
          code = (await res.clone().json())?.error?.code ?? '';
        } catch {
          code = '(no JSON body)';
        }
        const ra = res.headers.get('retry-after');
        this.note(`${res.status} ${code}${ra ? ` RA=${ra}` : ''}`);
      }
      return res;
    } catch (err) {
      this.note(`network ${err?.cause?.code ?? err?.name ?? 'error'}`);
      throw err;
    }
  };

  note(what) {
    this.seen.push({ at: Date.now(), what });
  }

  async setup(names = ['alice', 'bob', 'carol', 'dave']) {
    const suffix = randomBytes(3).toString('hex');
    this.users = [];
    for (const name of names) {
      this.users.push(
        await (async () => {
        const client = new BilClient({ baseUrl: this.baseUrl, keyStore: new MemoryKeyStore(), fetch: this.#fetch });
        const account = await client.register({ username: `${name}_${suffix}`, password: PASSWORD, deviceName: 'faults' });
          return { name, client, userId: account.userId, state: 'new', got: new Map(), seqs: new Set(), lastSeq: new Map(), orderErrors: 0 };
        })(),
      );
    }
    const [a, b, c, d] = this.users;
    const personal = async (x, y) => ({ chatId: (await x.client.chats.createPersonal(y.userId)).chatId, kind: '1:1', members: [x, y].map((u) => this.users.indexOf(u)) });
    this.chats.push(await personal(a, b), await personal(c, d));
    const group = await a.client.chats.createGroup({ title: 'faults', members: [b.userId, c.userId, d.userId] });
    this.chats.push({ chatId: group.chatId, kind: 'group', members: [0, 1, 2, 3] });
    for (const u of this.users) this.#connect(u);
    for (let end = Date.now() + 30_000; !this.users.every((u) => u.state === 'live'); ) {
      if (Date.now() > end) throw new Error(`live clients not live within 30 s: ${this.users.map((u) => `${u.name}=${u.state}`).join(', ')}`);
      await sleep(50);
    }
  }

  #connect(u) {
    const live = u.client.live({ ackDelayMs: 50 });
    u.live = live;
    live.on('state', (s) => (u.state = s.state));
    live.on('message', (m) => {
      const match = /^faults #(\d+)$/.exec(m.text);
      if (!match) return;
      const n = Number(match[1]);
      const times = u.got.get(n) ?? [];
      times.push(Date.now());
      u.got.set(n, times);
      u.seqs.add(`${m.chatId}:${m.seq}`);
      const last = u.lastSeq.get(m.chatId) ?? 0;
      if (m.seq <= last) u.orderErrors++;
      u.lastSeq.set(m.chatId, Math.max(last, m.seq));
    });
    live.on('undecryptable', (m) => {
      const copy = u.seqs.has(`${m.chatId}:${m.seq}`) ? ', a copy of one already shown' : '';
      this.note(`undecryptable ${m.error}${copy}`);
      console.log(`[faults] ${u.name}: undecryptable ${m.error} in ${this.chats.find((c) => c.chatId === m.chatId)?.kind ?? '?'} chat, seq ${m.seq}${copy}`);
    });
    live.on('disconnected', (e) => this.note(`ws close ${e.code}`));
    live.on('error', (e) => this.note(`ws error ${e.code}`));
  }

  /** Sends `perSecond` messages a second, round robin over every (member, chat) pair; each send is the SDK's (retried through outages). */
  startLoad(perSecond = 20) {
    const pairs = this.chats.flatMap((c, chat) => c.members.map((sender) => ({ sender, chat })));
    let i = 0;
    this.#timer = setInterval(() => {
      const { sender, chat } = pairs[i++ % pairs.length];
      const n = ++this.#n;
      const s = { n, sender, chat, startedAt: Date.now() };
      this.sends.push(s);
      this.users[sender].client.messages.send(this.chats[chat].chatId, `faults #${n}`).then(
        (r) => {
          s.ackedAt = Date.now();
          s.seq = r.seq;
        },
        (err) => {
          s.error = `${err?.status ?? ''} ${err?.code ?? err?.name}`.trim();
          this.note(`send failed ${s.error}`);
        },
      );
    }, 1000 / perSecond);
  }

  stopLoad() {
    clearInterval(this.#timer);
  }

  /** The devices that must see send `s`: every member but the sender. */
  recipients(s) {
    return this.chats[s.chat].members.filter((m) => m !== s.sender);
  }

  /** When `s` had reached every recipient (the latest first arrival), or undefined. */
  deliveredAt(s) {
    let latest = 0;
    for (const r of this.recipients(s)) {
      const t = this.users[r].got.get(s.n)?.[0];
      if (t === undefined) return undefined;
      latest = Math.max(latest, t);
    }
    return latest;
  }

  /** Copies of one message on one device beyond the first. */
  duplicates(sends) {
    let d = 0;
    for (const s of sends) for (const u of this.users) d += Math.max(0, (u.got.get(s.n)?.length ?? 0) - 1);
    return d;
  }

  /** Acked sends some recipient has not received. */
  missing(sends) {
    return sends.filter((s) => s.ackedAt !== undefined && this.deliveredAt(s) === undefined);
  }

  /** Acked sends to `u` it has not received. */
  missingOn(u, sends) {
    const i = this.users.indexOf(u);
    return sends.filter((s) => s.ackedAt !== undefined && this.recipients(s).includes(i) && !u.got.has(s.n)).length;
  }

  orderErrors() {
    return this.users.reduce((a, u) => a + u.orderErrors, 0);
  }

  pending() {
    return this.sends.filter((s) => s.ackedAt === undefined && s.error === undefined).length;
  }

  close() {
    this.stopLoad();
    for (const u of this.users) u.live?.close();
  }
}
