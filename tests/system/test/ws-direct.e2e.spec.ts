// npm start routes WebSockets as the Kubernetes ingress does: the gateway
// accepts the /v1/ws upgrade and hands the client's socket itself to delivery
// (through start.mjs over IPC), so no frame passes through the gateway. Shown
// by freezing the gateway process (SIGSTOP) under an open socket: delivery
// still answers on it.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { BilClient, MemoryKeyStore } from '@bil/sdk/node';

const url = inject('bilUrl');
const ports = inject('bilPorts');

/** The pid of this system's gateway: the gateway entry whose environment has this system's port. */
function gatewayPid(): number {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('services/gateway/dist/main.js')) continue;
      if (readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(`BIL_GATEWAY_PORT=${ports.BIL_GATEWAY_PORT}`)) return Number(name);
    } catch {
      // gone, or not ours to read
    }
  }
  throw new Error('the gateway process was not found');
}

describe('WebSockets under npm start', () => {
  it.runIf(process.platform === 'linux')('go straight to delivery: a socket opened through the gateway keeps working while the gateway is frozen', async () => {
    const keyStore = new MemoryKeyStore();
    await new BilClient({ baseUrl: url, keyStore }).register({ username: `wsdirect_${Date.now().toString(36)}`, password: 'correct horse battery' });
    const token = (await keyStore.load())!.tokens!.accessToken;
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`, ['bil.v1'], { headers: { authorization: `Bearer ${token}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    });
    const pid = gatewayPid();
    process.kill(pid, 'SIGSTOP');
    try {
      const pong = new Promise<string>((resolve) => ws.once('pong', (data) => resolve(data.toString())));
      ws.ping('through-the-gateway?');
      const answer = await Promise.race([pong, new Promise<string>((r) => setTimeout(() => r('no answer within 3 s'), 3000))]);
      expect(answer).toBe('through-the-gateway?');
    } finally {
      process.kill(pid, 'SIGCONT');
      ws.terminate();
    }
  });

  it('refuse an upgrade without a token with 401 from delivery, through the gateway', async () => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`, ['bil.v1']);
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => resolve(-1));
    });
    expect(status).toBe(401);
    ws.terminate();
  });
});
