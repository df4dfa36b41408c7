// Ports for the services a test starts as processes. Not listen(0): a port
// from the kernel's ephemeral range (32768-60999 on Linux) can become the
// local end of some outgoing connection (a service's own connection to
// PostgreSQL, say) between choosing it and the service binding it, and the
// service then fails with EADDRINUSE. These come from below that range, are
// checked free on every address, and are never handed out twice by one process.
import { createServer } from 'node:net';

const FIRST = 20_000;
const SPAN = 12_000;
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

/** A port no other socket uses now, outside the ephemeral range, new to this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = FIRST + Math.floor(Math.random() * SPAN);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${FIRST} and ${FIRST + SPAN}`);
}
