// One system for every test in this package that only needs it running (the
// CLI, the demo, the README's tour): scripts/start.mjs on free ports with a
// private database, Redis prefix and NATS prefix, started once. Tests get its
// URL with inject('bilUrl'), and the config directory where its start.mjs
// wrote the digest service key (servers.json) with inject('bilConfigDir').
// The system is given its SERVICE_AUTH_SECRET (npm start makes one otherwise),
// so that the service-auth test can sign calls as a service would.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { createTestEnv, freePorts, startSystem, stopSystem, systemConfigDir, systemEnv, testSettings, type Ports } from '@bil/testkit';

declare module 'vitest' {
  export interface ProvidedContext {
    bilUrl: string;
    /** Where start.mjs wrote servers.json, as npm start writes the user's. */
    bilConfigDir: string;
    /** The digest service key start.mjs wrote there for bilUrl. */
    digestServiceKey: string;
    /** Every port start.mjs was given. */
    bilPorts: Ports;
    /** The secret the system's services sign internal gRPC calls with. */
    serviceAuthSecret: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await createTestEnv('system');
  const ports = await freePorts();
  const serviceAuthSecret = randomBytes(32).toString('base64url');
  let system;
  try {
    system = await startSystem({ ...systemEnv(env, ports), ...testSettings({ perIp: 1000, perUsername: 100 }), SERVICE_AUTH_SECRET: serviceAuthSecret });
  } catch (err) {
    await env.cleanup();
    throw err;
  }
  const url = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
  const servers = JSON.parse(readFileSync(join(systemConfigDir(env), 'servers.json'), 'utf8')) as Record<string, { digest_service_key: string }>;
  project.provide('bilUrl', url);
  project.provide('bilConfigDir', systemConfigDir(env));
  project.provide('digestServiceKey', servers[url]!.digest_service_key);
  project.provide('bilPorts', ports);
  project.provide('serviceAuthSecret', serviceAuthSecret);
  return async () => {
    const code = await stopSystem(system);
    await env.cleanup();
    if (code !== 0) process.stderr.write(`the system stopped with ${code}:\n${system.output().slice(-4000)}\n`);
  };
}
