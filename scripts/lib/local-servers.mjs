// `npm start`'s servers: PostgreSQL, Redis and NATS on loopback. One that is
// not reachable but installed is started here, on the port its URL names,
// as scripts/local-servers.sh starts them (nothing is installed: that script
// does it when asked). What is started keeps running after `npm start`
// stops, like a system service. BIL_START_SERVERS=0 turns this off (then a
// missing server is only named, with how to start it).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function reachable(url, defaultPort) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(1500);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('timeout', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
    s.connect(Number(u.port || defaultPort), u.hostname);
  });
}

function installed(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The three servers: how to start each on `port` (undefined when it can't be started here), and the hint. */
export function localServers({ databaseUrl, redisUrl, natsUrl }) {
  return [
    {
      name: 'PostgreSQL',
      url: databaseUrl,
      port: 5432,
      hint: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
      // The Debian cluster, on its own port only (its data and settings are the cluster's).
      start: (port) => {
        if (port !== 5432 || !installed('pg_ctlcluster') || !existsSync('/etc/postgresql')) return undefined;
        const version = readdirSync('/etc/postgresql')[0];
        if (!version) return undefined;
        return () => execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'ignore' });
      },
    },
    {
      name: 'Redis',
      url: redisUrl,
      port: 6379,
      hint: 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
      start: (port) =>
        installed('redis-server')
          ? () =>
              execFileSync(
                'redis-server',
                ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', tmpdir(), '--logfile', join(tmpdir(), `bil-redis-${port}.log`)],
                { stdio: 'ignore' },
              )
          : undefined,
    },
    {
      name: 'NATS',
      url: natsUrl,
      port: 4222,
      hint: 'nats-server -js -a 127.0.0.1 -p 4222 -sd /var/lib/nats-server &',
      start: (port) => {
        if (!installed('nats-server')) return undefined;
        return () => {
          // JetStream's store: the packaged server's for the standard port, a folder of its own for any other.
          const store = port === 4222 ? '/var/lib/nats-server' : join(tmpdir(), `bil-nats-${port}`);
          mkdirSync(store, { recursive: true });
          const log = openSync(join(tmpdir(), `bil-nats-${port}.log`), 'a');
          spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { detached: true, stdio: ['ignore', log, log] }).unref();
        };
      },
    },
  ];
}

/**
 * Makes sure every server answers: a missing local one that is installed is
 * started and waited for (20 s). Returns the ones still missing.
 */
export async function ensureServers(servers, { startMissing = true, log = console.log } = {}) {
  const missing = [];
  for (const s of servers) {
    if (await reachable(s.url, s.port)) continue;
    const u = new URL(s.url);
    const port = Number(u.port || s.port);
    const start = startMissing && LOCAL_HOSTS.has(u.hostname) ? s.start(port) : undefined;
    if (!start) {
      missing.push(s);
      continue;
    }
    log(`bil: ${s.name} is not running on 127.0.0.1:${port}; starting it (it keeps running after bil stops)`);
    try {
      start();
    } catch {
      missing.push(s);
      continue;
    }
    let up = false;
    for (let i = 0; i < 40 && !up; i++) {
      await new Promise((r) => setTimeout(r, 500));
      up = await reachable(s.url, s.port);
    }
    if (up) log(`bil: ${s.name} started`);
    else missing.push(s);
  }
  return missing;
}
