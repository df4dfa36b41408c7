// docs/ws-protocol.md against delivery: the frame tables, the error codes,
// the close codes and each chat_event kind's data, compared with delivery's
// own lists and with frames built by delivery's own frame functions.
import { describe, expect, it } from 'vitest';
import {
  CHAT_EVENT_DATA,
  CHAT_EVENT_ENUMS,
  CHAT_EVENT_KINDS,
  FIELD_TYPES,
  type ChatEventKind,
} from '@bil/delivery/chat-events';
import {
  CHAT_NOT_FOUND_FRAMES,
  CLIENT_FRAME_TYPES,
  CloseCodes,
  CloseReasons,
  ERROR_CODES,
  SERVER_FRAME_TYPES,
  authOkFrame,
  chatEventFrame,
  digestFrame,
  digestPolicyFrame,
  errorFrame,
  helloFrame,
  messageFrame,
  parseClientFrame,
  pongFrame,
  presenceFrame,
  receiptFrame,
  syncedFrame,
  typingFrame,
  withWrappedKey,
} from '@bil/delivery/frames';
import { FRAME_RATE_LIMITS } from '@bil/delivery/frame-limits';
import { codeSpans, key, readDoc, section, tableOf, tables } from './markdown.js';
import { readProto, sample } from './proto.js';
import { answers, sourceCodes } from './source-codes.js';

const doc = readDoc('ws-protocol.md');
const ID = '11111111-1111-4111-8111-111111111111';

/** The documented field names of a fields cell: its code spans that look like names (`id?` → `id`). */
const fieldNames = (cell: string) => codeSpans(cell).map((s) => s.replace(/\?$/, '')).filter((s) => /^[a-z][a-z0-9_]*$/.test(s));

describe('docs/ws-protocol.md: frames', () => {
  const client = tableOf(doc, 'Client → server');
  const server = tableOf(doc, 'Server → client');

  it('documents exactly the client frame types delivery accepts', () => {
    expect(client.rows.map((r) => key(r.type!)).sort()).toEqual([...CLIENT_FRAME_TYPES].sort());
  });

  it('every documented client frame, built from its documented fields, is accepted', () => {
    const values: Record<string, unknown> = { chat_id: ID, seq: 1, token: 'a.b.c', active: true, user_ids: [ID], cursors: { [ID]: 0 } };
    for (const row of client.rows) {
      const type = key(row.type!);
      const frame: Record<string, unknown> = { type, id: 'x' };
      for (const f of fieldNames(row.fields!)) {
        if (!(f in values)) throw new Error(`no sample value for documented field ${type}.${f}`);
        frame[f] = values[f];
      }
      expect(parseClientFrame(JSON.stringify(frame)), type).toMatchObject({ type });
    }
    expect(() => parseClientFrame(JSON.stringify({ type: 'no_such_frame' }))).toThrow();
  });

  it('documents exactly the server frame types delivery sends', () => {
    expect(server.rows.map((r) => key(r.type!)).sort()).toEqual([...SERVER_FRAME_TYPES].sort());
  });

  it('every field of every frame delivery builds is documented in its row', () => {
    const built: string[] = [
      helloFrame({ node: 'n', userId: ID, deviceId: ID, expiresAt: 1, maxFrameBytes: 65536 }),
      withWrappedKey(messageFrame({ chatId: ID, seq: 1, messageId: ID, senderUserId: ID, senderDeviceId: ID, epoch: 0, envelope: '{}', createdAt: 'x' }), 'k'),
      syncedFrame({ [ID]: 1 }),
      receiptFrame({ chatId: ID, userId: ID, deviceId: ID, seq: 1, durable: false }),
      typingFrame({ chatId: ID, userId: ID, deviceId: ID, active: true }),
      presenceFrame(ID, true),
      chatEventFrame('member_added', ID, {}),
      digestFrame({ event: 'ready', requestId: ID, chatIds: [ID], method: 'llm', expiresAt: 'x' }),
      digestFrame({ event: 'failed', requestId: ID, reason: 'DIGEST_FAILURE_REASON_TIMEOUT' }),
      digestPolicyFrame({ chatId: ID, userId: ID, enabled: false, disabledByCount: 1 }),
      authOkFrame(1, 'x'),
      pongFrame('x'),
      errorFrame('presence_not_allowed', 'm', 'x', { user_ids: [] }),
    ];
    const rows = new Map(server.rows.map((r) => [key(r.type!), r.fields!]));
    const seen = new Set<string>();
    for (const text of built) {
      const { type, ...fields } = JSON.parse(text) as Record<string, unknown>;
      seen.add(String(type));
      const documented = fieldNames(rows.get(String(type)) ?? '');
      // `id` is echoed in auth_ok and pong as the text under the table says.
      for (const f of Object.keys(fields)) if (!(f === 'id' && (type === 'auth_ok' || type === 'pong'))) expect(documented, `${String(type)}.${f}`).toContain(f);
    }
    expect([...seen].sort()).toEqual([...SERVER_FRAME_TYPES].sort());
  });

  it('the chat_event row names exactly the kinds delivery relays', () => {
    const cell = server.rows.find((r) => key(r.type!) === 'chat_event')!.fields!;
    const events = codeSpans(cell.slice(cell.indexOf('Events:')));
    expect(events.filter((e) => /^[a-z_]+$/.test(e)).sort()).toEqual([...CHAT_EVENT_KINDS].sort());
  });
});

describe('docs/ws-protocol.md: upgrade refusals', () => {
  // The upgrade is answered by delivery's ws-server (the token check is runtime's, Node's own refusals and the
  // connection cap are runtime's http-edge) or, in front of it, the gateway's ws-proxy.
  const upgrade = sourceCodes('services/delivery/src/infra/ws-server.ts', 'services/gateway/src/ws-proxy.ts', 'packages/runtime/src/http-edge.ts');
  const token = sourceCodes('packages/runtime/src/access-token.ts', 'services/delivery/src/infra/ws-server.ts');
  const rows = tableOf(doc, 'Connecting and authentication').rows.flatMap((r) => codeSpans(r.code!).map((code) => ({ status: Number(r.status), code })));

  it('every documented refusal is one the upgrade answers, with that status', () => {
    const wrong = rows.filter((r) => !answers(r.status === 401 ? token : upgrade, r.code, r.status).ok);
    expect(wrong).toEqual([]);
  });

  it('every refusal the upgrade answers is documented', () => {
    const missing: string[] = [];
    for (const [code, statuses] of upgrade.statuses) for (const s of statuses) if (!rows.some((r) => r.code === code && r.status === s)) missing.push(`${s} ${code}`);
    for (const [code, statuses] of token.statuses) if (statuses.has(401) && !rows.some((r) => r.code === code && r.status === 401)) missing.push(`401 ${code}`);
    expect(missing).toEqual([]);
  });
});

describe('docs/ws-protocol.md: error and close codes', () => {
  it('documents exactly the error codes delivery sends, and which frames get chat_not_found', () => {
    const t = tableOf(doc, 'Error codes');
    expect(t.rows.map((r) => key(r.code!)).sort()).toEqual([...ERROR_CODES].sort());
    for (const r of t.rows) {
      const answers = codeSpans(r.answers!);
      for (const a of answers) expect(CLIENT_FRAME_TYPES as readonly string[], `${key(r.code!)} answers ${a}`).toContain(a);
      if (answers.length === 0) expect(r.answers, key(r.code!)).toBe('any frame');
    }
    const notFound = t.rows.find((r) => key(r.code!) === 'chat_not_found')!;
    expect(codeSpans(notFound.answers!).sort()).toEqual([...CHAT_NOT_FOUND_FRAMES].sort());
  });

  it('documents exactly the per-socket rate limit of every client frame type (FRAME_RATE_LIMITS)', () => {
    const t = tableOf(doc, 'Rate limits');
    const documented = Object.fromEntries(t.rows.map((r) => [key(r.type!), { burst: Number(r.burst), perSecond: Number(r['per second']) }]));
    expect(documented).toEqual(FRAME_RATE_LIMITS);
    expect(Object.keys(FRAME_RATE_LIMITS).sort()).toEqual([...CLIENT_FRAME_TYPES].sort());
  });

  it('documents exactly the close codes, each with the reason delivery sends', () => {
    const t = tableOf(doc, 'Close codes');
    const byCode = new Map<number, string>(Object.entries(CloseCodes).map(([name, code]) => [code, CloseReasons[name as keyof typeof CloseCodes]]));
    expect(t.rows.map((r) => Number(r.code)).sort()).toEqual([...byCode.keys()].sort());
    for (const r of t.rows) {
      // A reason cell that starts with a code span names the reason delivery sends; 1009 is the library's (none).
      if (r.reason!.startsWith('`')) expect(key(r.reason!), r.code).toBe(byCode.get(Number(r.code)));
      else expect(Number(r.code)).toBe(CloseCodes.tooBig);
    }
  });
});

describe('docs/ws-protocol.md: chat_event data', () => {
  const dataDoc = headings(doc);
  const proto = readProto('proto/bil/chat/v1/chat_service.proto', 'proto/bil/chat/v1/events.proto');
  const MESSAGE: Record<ChatEventKind, string> = {
    chat_created: 'ChatCreated',
    member_added: 'MemberAdded',
    member_removed: 'MemberRemoved',
    role_changed: 'RoleChanged',
    chat_deleted: 'ChatDeleted',
    epoch_published: 'GroupEpochPublished',
    epoch_keys_added: 'EpochKeysAdded',
    epoch_rotation_required: 'EpochRotationRequired',
    message_deleted: 'MessageDeleted',
    disappearing_timer_set: 'DisappearingTimerSet',
  };

  it('has one table per kind delivery relays, no more', () => {
    const under = dataDoc.filter((s) => s.level === 3 && s.parent === 'chat_event data').map((s) => s.title);
    expect(under.sort()).toEqual([...CHAT_EVENT_KINDS].sort());
  });

  for (const kind of CHAT_EVENT_KINDS) {
    it(`${kind}: the documented fields and types are what delivery emits for chat's event, every enum value included`, () => {
      const t = tables(section(doc, kind).body);
      expect(t).toHaveLength(1);
      const rows = t[0]!.rows.map((r) => ({ field: key(r.field!), type: r.type!, values: codeSpans(r.meaning!) }));
      expect(rows.map((r) => r.field)).toEqual(Object.keys(CHAT_EVENT_DATA[kind]));
      const spec = CHAT_EVENT_DATA[kind] as Record<string, readonly [keyof typeof FIELD_TYPES, string]>;
      for (const r of rows) expect(r.type, `${kind}.${r.field}`).toBe(FIELD_TYPES[spec[r.field]![0]]);
      // Every value of every enum the event carries: one sample per value.
      const enumTypes = [...new Set(proto.messages.get(MESSAGE[kind])!.map((f) => f.type).filter((ty) => proto.enums.has(ty)))];
      const memberEnums = enumTypes.length ? enumTypes : [''];
      for (const ty of memberEnums) {
        for (const value of ty ? proto.enums.get(ty)!.filter((v) => !v.endsWith('_UNSPECIFIED')) : ['']) {
          const pick = (t: string) => (t === ty ? value : proto.enums.get(t)!.find((v) => !v.endsWith('_UNSPECIFIED'))!);
          const payload = sample(proto, MESSAGE[kind], pick);
          const frame = JSON.parse(chatEventFrame(kind, ID, payload)) as { data: Record<string, unknown> };
          expect(Object.keys(frame.data), `${kind} as emitted`).toEqual(rows.map((r) => r.field));
          for (const r of rows) {
            const v = frame.data[r.field];
            const kindOf = spec[r.field]![0];
            if (r.type === 'integer') expect(Number.isSafeInteger(v), `${kind}.${r.field} is a JSON integer`).toBe(true);
            else if (r.type === 'string') expect(typeof v, `${kind}.${r.field}`).toBe('string');
            else if (r.type === 'string[]') expect(Array.isArray(v) && v.every((x) => typeof x === 'string')).toBe(true);
            else if (r.type === 'member[]') {
              for (const m of v as Record<string, unknown>[]) {
                expect(Object.keys(m)).toEqual(['user_id', 'role']);
                expect(CHAT_EVENT_ENUMS.role as readonly string[]).toContain(m.role);
              }
            } else throw new Error(`undocumented type ${r.type}`);
            if (kindOf in CHAT_EVENT_ENUMS) {
              // An enum: a documented lower-case value, never a proto name.
              expect(r.values, `${kind}.${r.field} documents ${String(v)}`).toContain(v);
            }
          }
        }
      }
    });
  }
});

// Level-2 and level-3 headings, each with the level-2 heading it is under.
function headings(markdown: string) {
  let parent = '';
  const out: { level: number; title: string; parent: string }[] = [];
  for (const line of markdown.split('\n')) {
    const h = /^(#{2,3})\s+(.*)$/.exec(line);
    if (!h) continue;
    if (h[1] === '##') parent = h[2]!;
    out.push({ level: h[1]!.length, title: h[2]!, parent });
  }
  return out;
}
