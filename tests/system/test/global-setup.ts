// One system for every test in this package that only needs it running (the
// CLI, the demo, the README's tour): scripts/start.mjs on free ports with a
// private database, Redis prefix and NATS prefix, started once. Tests get its
// URL with inject('bilUrl').
import type { TestProject } from 'vitest/node';
import { createTestEnv, freePorts, startSystem, stopSystem, systemEnv, testSettings } from '@bil/testkit';

declare module 'vitest' {
  export interface ProvidedContext {
    bilUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await createTestEnv('system');
  const ports = await freePorts();
  let system;
  try {
    system = await startSystem({ ...systemEnv(env, ports), ...testSettings({ perIp: 1000, perUsername: 100 }) });
  } catch (err) {
    await env.cleanup();
    throw err;
  }
  project.provide('bilUrl', `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`);
  return async () => {
    const code = await stopSystem(system);
    await env.cleanup();
    if (code !== 0) process.stderr.write(`the system stopped with ${code}:\n${system.output().slice(-4000)}\n`);
  };
}
