// The raw `ws` baseline (forked by fanout.bench.ts): a plain ws server on
// 127.0.0.1 with no auth, presence or routing. On `broadcast` it schedules
// messages open-loop at the given rate and writes each one, encoded once
// (a `message` frame of the same shape and size as delivery's, UTF-8 encoded
// once into one Buffer), to every connected socket. On `rss` it reports its resident memory.
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';

const now = () => performance.timeOrigin + performance.now();
const sockets = new Set<WebSocket>();
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => {
  sockets.add(ws);
  ws.on('close', () => sockets.delete(ws));
  ws.on('error', () => undefined);
});

type Req = { id: number; op: 'port' } | { id: number; op: 'rss' } | { id: number; op: 'broadcast'; rate: number; count: number; pad: string; startAt: number } | { id: number; op: 'exit' };

async function broadcast(rate: number, count: number, pad: string, startAt: number): Promise<{ sent: number }> {
  const chatId = randomUUID();
  let i = 0;
  while (i < count) {
    const t = now();
    while (i < count && startAt + (i * 1000) / rate <= t) {
      const intended = startAt + (i * 1000) / rate;
      i++;
      const frame = Buffer.from(
        JSON.stringify({
        type: 'message',
        chat_id: chatId,
        seq: i,
        message_id: randomUUID(),
        sender_user_id: chatId,
        sender_device_id: chatId,
        epoch: 1,
        envelope: JSON.stringify({ header: { n: i }, ciphertext: `T${intended}|${pad}` }),
          created_at: new Date().toISOString(),
        }),
      );
      for (const ws of sockets) ws.send(frame, { binary: false });
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return { sent: count };
}

process.on('message', (req: Req) => {
  const answer = (result: unknown) => process.send?.({ id: req.id, result });
  switch (req.op) {
    case 'port': {
      const a = wss.address();
      answer({ port: typeof a === 'object' && a ? a.port : 0 });
      return;
    }
    case 'rss':
      answer({ rss: process.memoryUsage().rss, sockets: sockets.size });
      return;
    case 'broadcast':
      void broadcast(req.rate, req.count, req.pad, req.startAt).then(answer);
      return;
    case 'exit':
      wss.close();
      answer({});
      setTimeout(() => process.exit(0), 50);
      return;
  }
});
process.on('disconnect', () => process.exit(0));
wss.on('listening', () => process.send?.({ id: 0, result: 'listening' }));
