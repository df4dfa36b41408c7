// One real system for the whole suite (each test file puts its own malicious
// proxy in front of it): tests get the honest gateway's URL with
// inject('gatewayUrl'), the system's database with inject('databaseUrl'), and
// its NATS server and subject prefix with inject('natsUrl'), inject('natsPrefix').
import type { TestProject } from 'vitest/node';
import { createTestEnv } from '@bil/testkit';
import { startSystem } from './harness/stack.js';

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
  let system;
  try {
    system = await startSystem(env);
  } catch (err) {
    await env.cleanup();
    throw err;
  }
  project.provide('gatewayUrl', system.gatewayUrl);
  project.provide('databaseUrl', system.databaseUrl);
  project.provide('natsUrl', env.natsUrl);
  project.provide('natsPrefix', env.natsPrefix);
  return async () => {
    await system.stop();
    await env.cleanup();
  };
}
