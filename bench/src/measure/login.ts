// 7. register and login through the gateway (identity's scrypt, N = 2^15,
// r = 8, p = 1) vs the raw server doing scrypt with the same parameters and
// one row: closed loop, a few at once, for a fixed time each.
import { makeUsers, PASSWORD, postJson, runTag } from '../clients.js';
import type { Ctx, Outcome } from '../context.js';
import { fmt, ratio, summarise, type Row } from '../stats.js';
import { existingWorld } from './one-to-one.js';

async function closedLoop(seconds: number, concurrency: number, op: (i: number) => Promise<number>): Promise<{ perSecond: number; ok: number; failed: number; p50: number; p99: number }> {
  const until = performance.now() + seconds * 1000;
  const lat: number[] = [];
  let ok = 0;
  let failed = 0;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const s = performance.now();
        const status = await op(n++);
        lat.push(performance.now() - s);
        if (status >= 200 && status < 300) ok++;
        else failed++;
      }
    }),
  );
  const sum = summarise(lat);
  return { perSecond: ok / ((performance.now() - t0) / 1000), ok, failed, p50: sum.p50, p99: sum.p99 };
}

export async function login(ctx: Ctx): Promise<Outcome> {
  const { stack } = ctx;
  const seconds = ctx.quick ? 4 : 10;
  const conc = 4;
  const password = PASSWORD;
  // Login needs an existing device (device_id): the 1:1 world's accounts, else a few made here.
  const devices = existingWorld()?.senders ?? (await makeUsers(stack.baseUrl, 8));
  const name = (sys: string, i: number) => `l${runTag}${sys}${i}`;
  const results: Record<string, Awaited<ReturnType<typeof closedLoop>>> = {};
  results.projectRegister = await closedLoop(seconds, conc, (i) => postJson(`${stack.baseUrl}/v1/auth/register`, { username: name('p', i), password }));
  results.rawRegister = await closedLoop(seconds, conc, (i) => postJson(`${stack.raw.baseUrl}/raw/register`, { username: name('r', i), password }));
  const rOk = results.rawRegister.ok;
  results.projectLogin = await closedLoop(seconds, conc, (i) => {
    const u = devices[i % devices.length]!;
    return postJson(`${stack.baseUrl}/v1/auth/login`, { username: u.username, password, device_id: u.deviceId });
  });
  results.rawLogin = await closedLoop(seconds, conc, (i) => postJson(`${stack.raw.baseUrl}/raw/login`, { username: name('r', i % Math.max(1, rOk)), password }));
  ctx.log(`login: ${JSON.stringify(results)}`);
  const row = (label: string, p: (typeof results)[string], r: (typeof results)[string]): Row[] => [
    { label: `${label}/s (${conc} at once)`, project: fmt(p.perSecond), raw: fmt(r.perSecond), ratio: ratio(p.perSecond, r.perSecond) },
    { label: `${label} p50 / p99`, project: `${fmt(p.p50, 'ms')} / ${fmt(p.p99, 'ms')}`, raw: `${fmt(r.p50, 'ms')} / ${fmt(r.p99, 'ms')}`, ratio: `${ratio(p.p50, r.p50)} / ${ratio(p.p99, r.p99)}` },
  ];
  return {
    tables: [
      {
        name: 'login',
        title: 'register / login vs raw scrypt (same parameters)',
        rows: [...row('register', results.projectRegister!, results.rawRegister!), ...row('login', results.projectLogin!, results.rawLogin!)],
        notes: [
          `failed: project register ${results.projectRegister!.failed}, login ${results.projectLogin!.failed}; raw register ${results.rawRegister!.failed}, login ${results.rawLogin!.failed}.`,
          'register through the gateway is the account only (POST /v1/auth/register; the SDK adds the device afterwards); login is POST /v1/auth/login for an existing device. Rates: higher is better; latencies: project / raw.',
        ],
      },
    ],
    data: results,
  };
}
