// One real system for the whole suite (each test file puts its own malicious
// proxy in front of it): tests get the honest gateway's URL with
// inject('gatewayUrl'), the system's database with inject('databaseUrl'), and
// its NATS server and subject prefix with inject('natsUrl'), inject('natsPrefix').
// The system is scripts/start.mjs (startSystem from @bil/testkit) on free ports
// and this suite's private environment, with auth rate limits for the many
// sign-ups of its tests.
import type { TestProject } from 'vitest/node';
import { createTestEnv, freePorts, startSystem, stopSystem, systemEnv, testSettings } from '@bil/testkit';

declare module 'vitest' {
  export interface ProvidedContext {
    gatewayUrl: string;
    databaseUrl: string;
    natsUrl: string;
    natsPrefix: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await createTestEnv('adversary');
  const ports = await freePorts();
  let system;
  try {
    system = await startSystem({ ...systemEnv(env, ports), ...testSettings({ perIp: 10_000, perUsername: 1000 }) });
  } catch (err) {
    await env.cleanup();
    throw err;
  }
  project.provide('gatewayUrl', `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`);
  project.provide('databaseUrl', env.databaseUrl);
  project.provide('natsUrl', env.natsUrl);
  project.provide('natsPrefix', env.natsPrefix);
  return async () => {
    await stopSystem(system);
    await env.cleanup();
  };
}
