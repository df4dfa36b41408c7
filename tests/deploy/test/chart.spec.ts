// The Helm chart deploy/helm/bil-message, linted and rendered with the default
// and the production example values (global-setup.ts), every manifest checked
// against the Kubernetes schemas, and the rendered output checked against the
// services' code: their configuration loaders, ops endpoints, WebSocket path
// and migrate commands.
// Size: past 400 lines because every rendered manifest is checked against the
// code in one place, on one render per values file (rendering is the slow part).
import { createHash, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ServiceAuth } from '@bil/runtime';
import { describe, expect, inject, it } from 'vitest';
import {
  type K8s,
  Manifests,
  type ValueSet,
  chartDir,
  components,
  containerEnv,
  containerPort,
  entrypointRuns,
  matches,
  opsPaths,
  opsPortKey,
  parseManifests,
  read,
  release,
  repo,
  runHelm,
  secretConfigKeys,
  servicesWithMigrate,
  templateArgs,
} from './support.js';

const helm = inject('helm');
const sets: ValueSet[] = ['default', 'production'];
const rendered = Object.fromEntries(
  sets.map((set) => [set, helm.template[set].code === 0 ? new Manifests(parseManifests(helm.template[set].stdout)) : new Manifests([])]),
) as Record<ValueSet, Manifests>;
const existingSecret: Record<ValueSet, string | undefined> = { default: undefined, production: 'bil-message-secrets' };
/** The digest trust domain's Secret (secrets.digestExistingSecret of the production example; chart-made otherwise). */
const digestSecret: Record<ValueSet, string> = { default: 'bil-message-digest', production: 'bil-message-digest-secrets' };
/** Components that may see the digest trust domain's Secret. */
const DIGEST_DOMAIN = ['digest', 'digest-worker'];
const DIGEST_DOMAIN_KEYS = ['DIGEST_SERVICE_IDENTITY_SEED', 'DIGEST_KEY_ENCRYPTION_KEY', 'OPENAI_API_KEY'];

/** The one container of a workload's pod template (the chart runs one per pod). */
function mainContainer(workload: K8s): K8s {
  const containers = workload.spec.template.spec.containers as K8s[];
  expect(containers, `${workload.metadata.name} has one container`).toHaveLength(1);
  return containers[0]!;
}

function componentOf(o: K8s): string {
  return o.metadata.labels['app.kubernetes.io/component'] as string;
}

/** The module of kubernetes-models that holds an object's model class. */
function modelModule(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [undefined, apiVersion];
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

describe('helm', () => {
  it(`is a Helm with lint and template (${helm.version})`, () => {
    expect(helm.version).toMatch(/^v[34]\./);
  });

  for (const set of sets) {
    it(`lints cleanly with the ${set} values (--strict)`, () => {
      const lint = helm.lint[set];
      expect(lint.stdout + lint.stderr).not.toMatch(/\[(ERROR|WARNING)\]/);
      expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    });

    it(`renders with the ${set} values`, () => {
      expect(helm.template[set].code, helm.template[set].stderr).toBe(0);
      expect(rendered[set].docs.length).toBeGreaterThan(20);
    });
  }
});

describe.each(sets)('rendered with the %s values', (set) => {
  const m = rendered[set];
  const secretName = existingSecret[set];
  const existingSecrets = set === 'production' ? [secretName!, digestSecret[set]] : [];

  describe('Kubernetes schemas', () => {
    it('every object validates against its kubernetes-models schema', async () => {
      const failures: string[] = [];
      for (const doc of m.docs) {
        const mod = (await import(modelModule(doc.apiVersion, doc.kind))) as Record<string, new (data: unknown) => { validate(): void }>;
        const Model = mod[doc.kind];
        if (!Model) throw new Error(`kubernetes-models has no ${doc.apiVersion} ${doc.kind}`);
        try {
          new Model(doc).validate();
        } catch (err) {
          failures.push(`${doc.kind} ${doc.metadata?.name}: ${(err as Error).message}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it('no object has a field its kind does not know (TypeScript excess-property check on kubernetes-models types)', () => {
      // The JSON-schema validation above lets unknown fields through (the API
      // server rejects them); TypeScript's object-literal check does not.
      const file = join(import.meta.dirname, `__rendered_${set}__.ts`);
      const source = m.docs
        .map((d, i) => `import type { I${d.kind} as T${i} } from '${modelModule(d.apiVersion, d.kind)}';\nexport const d${i}: T${i} = ${JSON.stringify(d)};`)
        .join('\n');
      const options: ts.CompilerOptions = {
        strict: true,
        noEmit: true,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        skipLibCheck: true,
        types: [],
      };
      const host = ts.createCompilerHost(options);
      const getSourceFile = host.getSourceFile.bind(host);
      const fileExists = host.fileExists.bind(host);
      host.getSourceFile = (f, lang, ...rest) => (f === file ? ts.createSourceFile(f, source, lang) : getSourceFile(f, lang, ...rest));
      host.fileExists = (f) => f === file || fileExists(f);
      const program = ts.createProgram([file], options, host);
      const problems = ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
        const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
        const doc = line >= 0 ? m.docs[Math.floor(line / 2)] : undefined;
        return `${doc ? `${doc.kind} ${doc.metadata?.name}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      });
      expect(problems).toEqual([]);
    }, 60_000);

    it('names are unique per kind and every object carries the chart labels', () => {
      const seen = new Set<string>();
      for (const d of m.docs) {
        const id = `${d.kind}/${d.metadata.name}`;
        expect(seen.has(id), `duplicate ${id}`).toBe(false);
        seen.add(id);
        expect(d.metadata.labels?.['app.kubernetes.io/instance'], id).toBe(release.name);
        expect(d.metadata.labels?.['app.kubernetes.io/name'], id).toBe('bil-message');
      }
    });
  });

  describe('workloads', () => {
    it('has one Deployment per component: identity, chat, delivery, digest, digest-worker, gateway', () => {
      expect(m.ofKind('Deployment').map(componentOf).sort()).toEqual(Object.keys(components).sort());
    });

    it('every Deployment runs its service through the image entrypoint, whose target the build produces', () => {
      for (const [component, code] of Object.entries(components)) {
        const c = mainContainer(m.deployment(component));
        expect(c.command, `${component} keeps the image's ENTRYPOINT`).toBeUndefined();
        const r = entrypointRuns(c.args);
        expect(r.code, component).toBe(0);
        const main = JSON.parse(read(`${code.dir}/package.json`)).main.replace(/^\.\//, '');
        expect(r.runs, component).toEqual([[`${code.dir}/${main}`, ...(code.command ? [code.command] : [])]]);
        expect(existsSync(join(repo, code.dir, main)), `${code.dir}/${main} is built`).toBe(true);
      }
    });

    it('every container has CPU and memory requests and limits', () => {
      for (const w of m.workloads()) {
        for (const c of [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers] as K8s[]) {
          for (const kind of ['requests', 'limits']) {
            for (const r of ['cpu', 'memory']) expect(c.resources?.[kind]?.[r], `${w.metadata.name}/${c.name} ${kind}.${r}`).toBeDefined();
          }
        }
      }
    });

    it('every pod runs non-root, read-only, without capabilities or privilege escalation, with the RuntimeDefault seccomp profile', () => {
      for (const w of m.workloads()) {
        const pod = w.spec.template.spec;
        const id = w.metadata.name;
        expect(pod.securityContext?.runAsNonRoot, id).toBe(true);
        expect(pod.securityContext?.runAsUser, id).toBeGreaterThan(0);
        expect(pod.securityContext?.seccompProfile?.type, id).toBe('RuntimeDefault');
        expect(pod.automountServiceAccountToken, `${id} mounts no API token`).toBe(false);
        expect(pod.enableServiceLinks, `${id}: service links could shadow settings such as CHAT_GRPC_PORT`).toBe(false);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers] as K8s[]) {
          const sc = c.securityContext ?? {};
          expect(sc.runAsNonRoot, `${id}/${c.name}`).toBe(true);
          expect(sc.readOnlyRootFilesystem, `${id}/${c.name}`).toBe(true);
          expect(sc.allowPrivilegeEscalation, `${id}/${c.name}`).toBe(false);
          expect(sc.privileged ?? false, `${id}/${c.name}`).toBe(false);
          expect(sc.capabilities?.drop, `${id}/${c.name}`).toContain('ALL');
          expect(sc.capabilities?.add ?? [], `${id}/${c.name}`).toEqual([]);
          // A writable /tmp on a read-only root filesystem.
          const tmp = (c.volumeMounts ?? []).find((v: K8s) => v.mountPath === '/tmp');
          expect(tmp, `${id}/${c.name} mounts /tmp`).toBeDefined();
          expect(pod.volumes.find((v: K8s) => v.name === tmp.name)?.emptyDir, `${id}: /tmp is an emptyDir`).toBeDefined();
        }
      }
    });

    it("every container's environment passes its service's own configuration loader (production mode)", () => {
      for (const [component, code] of Object.entries(components)) {
        const env = containerEnv(m, mainContainer(m.deployment(component)), existingSecrets);
        expect(env.NODE_ENV, component).toBe('production');
        expect(() => code.load(env), component).not.toThrow();
      }
    });

    it('internal gRPC: every component that serves or calls it gets the one SERVICE_AUTH_SECRET from the release Secret (the digest worker none), and none starts in production without it', () => {
      const grpcComponents = ['identity', 'chat', 'digest', 'delivery', 'gateway'];
      const refs = new Set<string>();
      for (const [component, code] of Object.entries(components)) {
        const c = mainContainer(m.deployment(component));
        const ref = ((c.env ?? []) as K8s[]).find((e) => e.name === 'SERVICE_AUTH_SECRET');
        if (!grpcComponents.includes(component)) {
          expect(ref, `${component} needs no service secret`).toBeUndefined();
          continue;
        }
        expect(ref?.valueFrom?.secretKeyRef, component).toBeDefined();
        refs.add(`${ref!.valueFrom.secretKeyRef.name}/${ref!.valueFrom.secretKeyRef.key}`);
        const env = containerEnv(m, c, existingSecrets);
        expect(env.SERVICE_AUTH_SECRET!.length, component).toBeGreaterThanOrEqual(32);
        const without = { ...env, SERVICE_AUTH_SECRET: undefined };
        // The loader (or, for digest whose worker shares it, the gRPC server's ServiceAuth) refuses.
        expect(() => ServiceAuth.fromConfig(component, code.load(without) as never), component).toThrow(/SERVICE_AUTH_SECRET is required/);
      }
      expect([...refs]).toEqual([`${secretName ?? 'bil-message'}/SERVICE_AUTH_SECRET`]);
    });

    it('secret settings reach the containers only through Secret references', () => {
      const secretKeys = [...secretConfigKeys(), 'DATABASE_URL', 'REDIS_URL', 'NATS_URL'];
      for (const w of m.workloads()) {
        for (const c of w.spec.template.spec.containers as K8s[]) {
          for (const e of c.env ?? []) {
            if (secretKeys.includes(e.name)) expect(e.valueFrom?.secretKeyRef, `${w.metadata.name}/${c.name} ${e.name}`).toBeDefined();
          }
        }
      }
    });
  });

  describe('probes', () => {
    const paths = opsPaths();

    it("the runtime's ops server answers /healthz and /readyz", () => {
      expect(paths).toContain('/healthz');
      expect(paths).toContain('/readyz');
    });

    for (const component of Object.keys(components)) {
      it(`${component}: startup and liveness GET /healthz, readiness GET /readyz, on the port its ops server listens on`, () => {
        const c = mainContainer(m.deployment(component));
        const env = containerEnv(m, c, existingSecrets);
        const config = components[component]!.load(env);
        // The key main.ts passes to startOpsServer, and the port it holds in this container.
        const key = opsPortKey(component);
        const opsPort = config[key];
        expect(typeof opsPort === 'number' && opsPort > 0, `${component}: ${key} = ${String(opsPort)}`).toBe(true);
        for (const [probe, path] of [
          ['startupProbe', '/healthz'],
          ['livenessProbe', '/healthz'],
          ['readinessProbe', '/readyz'],
        ] as const) {
          const p = c[probe];
          expect(p?.httpGet, `${component} ${probe}`).toBeDefined();
          expect(p.httpGet.path, `${component} ${probe}`).toBe(path);
          expect(paths.has(p.httpGet.path), `${component} ${probe} path exists in the runtime`).toBe(true);
          expect(containerPort(c, p.httpGet.port), `${component} ${probe} port = ${key}`).toBe(opsPort);
        }
      });
    }

    it('every container port is a port its service listens on', () => {
      for (const [component, code] of Object.entries(components)) {
        const c = mainContainer(m.deployment(component));
        const config = code.load(containerEnv(m, c, existingSecrets));
        const portKeys = Object.keys(code.schema).filter((k) => k.endsWith('_PORT'));
        const listening = new Set(portKeys.map((k) => config[k]));
        for (const p of c.ports as K8s[]) {
          expect(listening.has(p.containerPort), `${component} ${p.name}:${p.containerPort} is one of ${portKeys.join(', ')}`).toBe(true);
        }
      }
    });
  });

  describe('Services and addresses', () => {
    it('every Deployment has a Service selecting its pods, with targetPorts naming container ports', () => {
      for (const d of m.ofKind('Deployment')) {
        const s = m.get('Service', d.metadata.name);
        expect(matches(s.spec.selector, d.spec.template.metadata.labels), d.metadata.name).toBe(true);
        expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name).toBe(true);
        for (const p of s.spec.ports as K8s[]) containerPort(mainContainer(d), p.targetPort);
      }
    });

    it('the gateway and delivery reach identity, chat, digest and delivery at their Services and ports', () => {
      const gateway = components.gateway!.load(containerEnv(m, mainContainer(m.deployment('gateway')), existingSecrets));
      const delivery = components.delivery!.load(containerEnv(m, mainContainer(m.deployment('delivery')), existingSecrets));
      const target = (component: string, portName: string) => {
        const d = m.deployment(component);
        const svc = m.get('Service', d.metadata.name);
        const port = svc.spec.ports.find((p: K8s) => p.name === portName);
        expect(port, `${component} Service port ${portName}`).toBeDefined();
        expect(containerPort(mainContainer(d), port.targetPort)).toBe(port.port);
        return { host: `${svc.metadata.name}.${release.namespace}.svc.cluster.local`, port: port.port as number };
      };
      const grpc = (url: unknown) => {
        const match = /^(?:dns:\/\/\/)?([^:]+):(\d+)$/.exec(String(url));
        expect(match, String(url)).not.toBeNull();
        return { host: match![1], port: Number(match![2]) };
      };
      expect(grpc(gateway.IDENTITY_GRPC_URL)).toEqual(target('identity', 'grpc'));
      expect(grpc(gateway.CHAT_GRPC_URL)).toEqual(target('chat', 'grpc'));
      expect(grpc(gateway.DIGEST_GRPC_URL)).toEqual(target('digest', 'grpc'));
      expect(grpc(delivery.IDENTITY_GRPC_URL)).toEqual(target('identity', 'grpc'));
      expect(grpc(delivery.CHAT_GRPC_URL)).toEqual(target('chat', 'grpc'));
      const ws = new URL(String(gateway.DELIVERY_WS_URL));
      expect({ host: ws.hostname, port: Number(ws.port) }).toEqual(target('delivery', 'ws'));
    });

    it('gRPC Services are headless, so that round_robin clients reach every pod', () => {
      for (const component of ['identity', 'chat', 'digest']) {
        expect(m.get('Service', m.deployment(component).metadata.name).spec.clusterIP, component).toBe('None');
      }
    });
  });

  describe('Ingress', () => {
    const routes = () =>
      m.ofKind('Ingress').flatMap((ing) =>
        (ing.spec.rules as K8s[]).flatMap((rule) =>
          (rule.http.paths as K8s[]).map((p) => ({ ingress: ing, host: rule.host as string | undefined, path: p.path as string, pathType: p.pathType as string, backend: p.backend.service as K8s })),
        ),
      );
    /** The container port an Ingress backend ends up on, and the Deployment behind it. */
    const resolve = (backend: K8s) => {
      const svc = m.get('Service', backend.name);
      const port = (svc.spec.ports as K8s[]).find((p) => (backend.port.name ? p.name === backend.port.name : p.port === backend.port.number));
      expect(port, `Service ${backend.name} port ${JSON.stringify(backend.port)}`).toBeDefined();
      const d = m.ofKind('Deployment').find((x) => matches(svc.spec.selector, x.spec.template.metadata.labels))!;
      return { component: componentOf(d), port: containerPort(mainContainer(d), port!.targetPort), container: mainContainer(d) };
    };

    it(`routes /v1/ws (the delivery WebSocket path) to delivery's WebSocket port`, () => {
      const wsPath = /export const WS_PATH = '([^']+)'/.exec(read('services/delivery/src/infra/ws-server.ts'))?.[1];
      expect(wsPath).toBe('/v1/ws');
      const ws = routes().filter((r) => r.path === wsPath);
      expect(ws.length).toBeGreaterThan(0);
      for (const r of ws) {
        expect(['Exact', 'Prefix']).toContain(r.pathType);
        const target = resolve(r.backend);
        expect(target.component).toBe('delivery');
        const config = components.delivery!.load(containerEnv(m, target.container, existingSecrets));
        expect(target.port).toBe(config.DELIVERY_WS_PORT);
      }
    });

    it("routes everything else (/ prefix) to the gateway's public port", () => {
      const rest = routes().filter((r) => r.path === '/');
      expect(rest.length).toBeGreaterThan(0);
      for (const r of rest) {
        expect(r.pathType).toBe('Prefix');
        const target = resolve(r.backend);
        expect(target.component).toBe('gateway');
        const config = components.gateway!.load(containerEnv(m, target.container, existingSecrets));
        expect(target.port).toBe(config.BIL_GATEWAY_PORT);
      }
      // No other path goes anywhere else.
      expect(routes().every((r) => r.path === '/' || r.path === '/v1/ws')).toBe(true);
    });

    it('keeps WebSockets open longer than the ping interval, and lets the largest request bodies through', () => {
      const ws = routes().find((r) => r.path === '/v1/ws')!.ingress;
      const api = routes().find((r) => r.path === '/')!.ingress;
      const delivery = components.delivery!.load(containerEnv(m, mainContainer(m.deployment('delivery')), existingSecrets));
      const gateway = components.gateway!.load(containerEnv(m, mainContainer(m.deployment('gateway')), existingSecrets));
      const pingSeconds = Number(delivery.DELIVERY_PING_INTERVAL_MS) / 1000;
      for (const a of ['nginx.ingress.kubernetes.io/proxy-read-timeout', 'nginx.ingress.kubernetes.io/proxy-send-timeout']) {
        expect(Number(ws.metadata.annotations?.[a]), a).toBeGreaterThan(pingSeconds * 2);
        // Only the WebSocket gets the long timeouts.
        expect(api.metadata.annotations?.[a], a).toBeUndefined();
      }
      const largest = Math.max(
        ...Object.entries(gateway)
          .filter(([k]) => /BODY_LIMIT_BYTES$/.test(k))
          .map(([, v]) => Number(v)),
      );
      const size = /^(\d+)([kmg]?)$/i.exec(String(api.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-body-size']));
      expect(size, 'proxy-body-size').not.toBeNull();
      const bytes = Number(size![1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[size![2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
      expect(bytes).toBeGreaterThanOrEqual(largest);
    });

    it('gateway trusts exactly the ingress hop for client addresses', () => {
      const gateway = components.gateway!.load(containerEnv(m, mainContainer(m.deployment('gateway')), existingSecrets));
      expect(gateway.GATEWAY_TRUST_PROXY).toBe(true);
      expect(gateway.GATEWAY_TRUST_PROXY_HOPS).toBe(1);
    });
  });

  describe('ConfigMap and Secret', () => {
    it('no ConfigMap holds a secret: no secret setting, no URL with credentials, no key material', () => {
      const secretKeys = secretConfigKeys();
      expect(secretKeys).toContain('IDENTITY_JWT_PRIVATE_KEY');
      expect(secretKeys).toContain('OPENAI_API_KEY');
      for (const cm of m.ofKind('ConfigMap')) {
        for (const [k, v] of Object.entries((cm.data ?? {}) as Record<string, string>)) {
          const id = `ConfigMap ${cm.metadata.name} ${k}`;
          expect(secretKeys.has(k), `${id} is a secret setting`).toBe(false);
          expect(['DATABASE_URL', 'REDIS_URL', 'NATS_URL'], `${id}: server URLs carry passwords`).not.toContain(k);
          expect(k, id).not.toMatch(/PASSWORD|SECRET|PRIVATE_KEY|API_KEY|JWT(?!_.*(TTL|INTERVAL))|_SEED$|ENCRYPTION_KEY$/i);
          expect(v, id).not.toMatch(/-----BEGIN/);
          expect(v, `${id} has credentials in a URL`).not.toMatch(/[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i);
        }
      }
    });

    if (set === 'default') {
      it('the chart-made Secrets: the release one holds a usable Ed25519 signing key, the digest one the two digest keys; both outlive helm uninstall', () => {
        const secret = m.get('Secret', 'bil-message');
        const digest = m.get('Secret', digestSecret[set]);
        for (const s of [secret, digest]) expect(s.metadata.annotations?.['helm.sh/resource-policy'], s.metadata.name).toBe('keep');
        const value = (k: string, from = secret) => Buffer.from(String(from.data[k]), 'base64').toString('utf8');
        expect(createPrivateKey(value('IDENTITY_JWT_PRIVATE_KEY')).asymmetricKeyType).toBe('ed25519');
        expect(value('DIGEST_SERVICE_IDENTITY_SEED', digest)).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(value('DIGEST_KEY_ENCRYPTION_KEY', digest)).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(value('DIGEST_SERVICE_IDENTITY_SEED', digest)).not.toBe(value('DIGEST_KEY_ENCRYPTION_KEY', digest));
        for (const k of ['DATABASE_URL', 'REDIS_URL', 'NATS_URL']) expect(value(k), k).toMatch(/^[a-z]+:\/\//);
        expect(value('DATABASE_URL', digest)).toMatch(/^postgres:\/\//);
        expect(value('SERVICE_AUTH_SECRET')).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(digest.data.SERVICE_AUTH_SECRET, 'the service secret is in the release Secret only').toBeUndefined();
        for (const k of DIGEST_DOMAIN_KEYS) expect(secret.data[k], `${k} is in the digest Secret only`).toBeUndefined();
      });
    } else {
      it('uses the existing Secrets and renders none with keys in it', () => {
        expect(m.ofKind('Secret')).toEqual([]);
        for (const w of m.workloads()) {
          for (const e of mainContainer(w).env ?? []) {
            if (e.valueFrom?.secretKeyRef) expect([secretName, digestSecret[set]], `${w.metadata.name} ${e.name}`).toContain(e.valueFrom.secretKeyRef.name);
          }
        }
      });
    }

    it('the digest trust domain: its Secret (seed, key-encryption key, model key, digest DATABASE_URL) reaches the digest API and workers only', () => {
      for (const w of m.workloads()) {
        const component = componentOf(w);
        const refs = (mainContainer(w).env ?? []).filter((e: K8s) => e.valueFrom?.secretKeyRef) as K8s[];
        const fromDigest = refs.filter((e) => e.valueFrom.secretKeyRef.name === digestSecret[set]).map((e) => `${e.name}=${e.valueFrom.secretKeyRef.key}`);
        for (const e of refs) {
          if (DIGEST_DOMAIN_KEYS.includes(e.name)) expect(DIGEST_DOMAIN, `${w.metadata.name} gets ${e.name}`).toContain(component);
        }
        if (DIGEST_DOMAIN.includes(component)) {
          expect(fromDigest.sort(), w.metadata.name).toEqual(
            ['DATABASE_URL=DATABASE_URL', 'DIGEST_KEY_ENCRYPTION_KEY=DIGEST_KEY_ENCRYPTION_KEY', 'DIGEST_SERVICE_IDENTITY_SEED=DIGEST_SERVICE_IDENTITY_SEED', 'OPENAI_API_KEY=OPENAI_API_KEY'],
          );
          // Nothing of the release Secret but the Redis and NATS URLs and the internal gRPC secret.
          const fromMain = refs.filter((e) => e.valueFrom.secretKeyRef.name !== digestSecret[set]).map((e) => e.name);
          for (const k of fromMain) expect(['REDIS_URL', 'NATS_URL', 'SERVICE_AUTH_SECRET', 'SERVICE_AUTH_PREVIOUS_SECRET'], `${w.metadata.name} ${k}`).toContain(k);
        } else if (w.kind !== 'Job') {
          expect(fromDigest, `${w.metadata.name} mounts the digest Secret`).toEqual([]);
        }
      }
    });

    it('the digest API and workers reach the database as the digest role, the other services as theirs', () => {
      const url = (component: string) => containerEnv(m, mainContainer(m.deployment(component)), existingSecrets).DATABASE_URL;
      expect(url('digest')).toBe(url('digest-worker'));
      if (set === 'production') {
        expect(url('digest')).toMatch(/bil_digest/);
        expect(url('chat')).not.toBe(url('digest'));
      }
    });
  });

  describe('migrations', () => {
    const job = () => {
      const jobs = m.ofKind('Job');
      expect(jobs).toHaveLength(1);
      return jobs[0]!;
    };

    it('a Job runs them as a pre-install,pre-upgrade hook, replaced on the next run and removed once it succeeded', () => {
      const a = job().metadata.annotations;
      expect(String(a['helm.sh/hook']).split(',').sort()).toEqual(['pre-install', 'pre-upgrade']);
      expect(String(a['helm.sh/hook-delete-policy']).split(',')).toContain('before-hook-creation');
      expect(job().spec.template.spec.restartPolicy).toBe('Never');
      expect(job().spec.activeDeadlineSeconds).toBeGreaterThan(0);
    });

    it('the Job migrates exactly the services that have a migrate command', () => {
      expect(mainContainer(job()).args).toEqual(['migrate']);
      const r = entrypointRuns(['migrate']);
      expect(r.code).toBe(0);
      const migrated = r.runs.map((args) => {
        expect(args[1], args.join(' ')).toBe('migrate');
        return /^services\/([^/]+)\/dist\/main\.js$/.exec(args[0]!)?.[1];
      });
      expect(migrated.sort()).toEqual(servicesWithMigrate().sort());
    });

    it("the Job's environment passes the configuration loader of every service it migrates, and holds no key", () => {
      const env = containerEnv(m, mainContainer(job()), existingSecrets);
      for (const s of servicesWithMigrate()) expect(() => components[s]!.load(env, { requireSecrets: false }), s).not.toThrow();
      const fromSecrets = (mainContainer(job()).env ?? []).filter((e: { valueFrom?: { secretKeyRef?: unknown } }) => e.valueFrom?.secretKeyRef).map((e: { name: string }) => e.name);
      expect(fromSecrets).toEqual(['DATABASE_URL', 'DIGEST_DATABASE_URL']);
      // The digest schema is migrated with the digest role's URL (the entrypoint passes DIGEST_DATABASE_URL as digest's DATABASE_URL).
      const digestUrl = containerEnv(m, mainContainer(m.deployment('digest')), existingSecrets).DATABASE_URL;
      expect(env.DIGEST_DATABASE_URL).toBe(digestUrl);
    });

    it('the Job uses only what exists before the release: hook resources or the existing Secret, no chart ServiceAccount or ConfigMap', () => {
      const pod = job().spec.template.spec;
      const weight = Number(job().metadata.annotations['helm.sh/hook-weight'] ?? 0);
      if (m.find('ServiceAccount', pod.serviceAccountName ?? '')) throw new Error('the Job uses the chart ServiceAccount, created after pre-install hooks');
      const c = mainContainer(job());
      expect(c.envFrom ?? []).toEqual([]);
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = m.find('Secret', ref.name);
        if (!secret) {
          expect([secretName, digestSecret[set]], e.name).toContain(ref.name);
          continue;
        }
        expect(String(secret.metadata.annotations?.['helm.sh/hook']).split(',').sort(), `Secret ${ref.name} is a hook`).toEqual(['pre-install', 'pre-upgrade']);
        expect(Number(secret.metadata.annotations['helm.sh/hook-weight']), `Secret ${ref.name} comes before the Job`).toBeLessThan(weight);
      }
    });

    it('the services do not migrate at start (the Job did)', () => {
      const cm = m.ofKind('ConfigMap')[0]!;
      for (const s of servicesWithMigrate()) {
        const key = Object.keys(components[s]!.schema).find((k) => k.endsWith('_MIGRATE_ON_START'));
        expect(key, s).toBeDefined();
        expect(cm.data[key!], key).toBe('false');
      }
    });

    if (set === 'default') {
      it('the migration Secret holds only the two database URLs, the same as the release and digest Secrets', () => {
        const main = m.get('Secret', 'bil-message');
        const digest = m.get('Secret', digestSecret[set]);
        const hook = m.get('Secret', 'bil-message-migrate');
        expect(Object.keys(hook.data).sort()).toEqual(['DATABASE_URL', 'DIGEST_DATABASE_URL']);
        expect(hook.data.DATABASE_URL).toBe(main.data.DATABASE_URL);
        expect(hook.data.DIGEST_DATABASE_URL).toBe(digest.data.DATABASE_URL);
      });
    }
  });

  describe('scaling and disruption', () => {
    it('HorizontalPodAutoscalers scale delivery and the digest worker, whose Deployments leave replicas to them', () => {
      const hpas = m.ofKind('HorizontalPodAutoscaler');
      const targets = hpas.map((h) => {
        expect(h.spec.scaleTargetRef.kind).toBe('Deployment');
        expect(h.spec.minReplicas).toBeLessThanOrEqual(h.spec.maxReplicas);
        return componentOf(m.get('Deployment', h.spec.scaleTargetRef.name));
      });
      expect(targets.sort()).toEqual(['delivery', 'digest-worker']);
      for (const t of targets) expect(m.deployment(t).spec.replicas, t).toBeUndefined();
    });

    it('a PodDisruptionBudget covers every Deployment and never blocks a drain on its own', () => {
      for (const d of m.ofKind('Deployment')) {
        const pdbs = m.ofKind('PodDisruptionBudget').filter((p) => matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels));
        expect(pdbs, d.metadata.name).toHaveLength(1);
        expect(pdbs[0]!.spec.maxUnavailable, d.metadata.name).toBeGreaterThanOrEqual(1);
      }
    });
  });

  describe('NetworkPolicy', () => {
    const policiesFor = (w: K8s) => m.ofKind('NetworkPolicy').filter((p) => matches(p.spec.podSelector.matchLabels, w.spec.template.metadata.labels));
    const isPodOfRelease = (peer: K8s) => !peer.namespaceSelector && !peer.ipBlock && peer.podSelector?.matchLabels?.['app.kubernetes.io/instance'] === release.name;
    const portsOf = (rule: K8s, c: K8s) => (rule.ports ?? []).map((p: K8s) => containerPort(c, p.port));

    it('every workload is selected by exactly one policy that restricts both directions', () => {
      for (const w of m.workloads()) {
        const ps = policiesFor(w);
        expect(ps, w.metadata.name).toHaveLength(1);
        expect([...ps[0]!.spec.policyTypes].sort()).toEqual(['Egress', 'Ingress']);
      }
    });

    it('only the gateway and delivery accept traffic from outside the release, on their public port only', () => {
      for (const w of m.workloads()) {
        const component = componentOf(w);
        const c = mainContainer(w);
        const config = components[component]?.load(containerEnv(m, c, existingSecrets));
        const metricsPort = components[component] ? config![opsPortKey(component)] : undefined;
        for (const rule of (policiesFor(w)[0]!.spec.ingress ?? []) as K8s[]) {
          const external = !rule.from || (rule.from as K8s[]).some((peer) => !isPodOfRelease(peer));
          if (!external) continue;
          for (const port of portsOf(rule, c)) {
            if (port === metricsPort) continue; // /metrics for Prometheus, /healthz, /readyz
            const publicPort = component === 'gateway' ? config!.BIL_GATEWAY_PORT : component === 'delivery' ? config!.DELIVERY_WS_PORT : undefined;
            expect(port, `${w.metadata.name} lets outside traffic in on ${port}`).toBe(publicPort);
          }
          expect(rule.ports?.length, `${w.metadata.name}: an outside rule names its ports`).toBeGreaterThan(0);
        }
      }
    });

    it('gRPC ports accept only the release pods that call them', () => {
      const callers: Record<string, string[]> = { identity: ['delivery', 'gateway'], chat: ['delivery', 'gateway'], digest: ['gateway'] };
      for (const [component, expected] of Object.entries(callers)) {
        const d = m.deployment(component);
        const c = mainContainer(d);
        const grpcPort = containerPort(c, 'grpc');
        const rules = (policiesFor(d)[0]!.spec.ingress as K8s[]).filter((r) => portsOf(r, c).includes(grpcPort));
        const from = rules.flatMap((r) => (r.from ?? [{ any: true }]) as K8s[]);
        expect(from.every(isPodOfRelease), component).toBe(true);
        expect(from.map((p) => p.podSelector.matchLabels['app.kubernetes.io/component']).sort(), component).toEqual(expected);
      }
    });

    it('each component reaches only DNS, the servers its configuration names, its gRPC/WebSocket peers, (digest workers) the model endpoint and (delivery with push on) the push services', () => {
      const servers: Record<string, { key: string; port: number }> = {
        postgresql: { key: 'DATABASE_URL', port: 5432 },
        redis: { key: 'REDIS_URL', port: 6379 },
        nats: { key: 'NATS_URL', port: 4222 },
      };
      for (const w of m.workloads()) {
        const component = componentOf(w);
        const c = mainContainer(w);
        const env = containerEnv(m, c, existingSecrets);
        const egress = (policiesFor(w)[0]!.spec.egress ?? []) as K8s[];
        const allowed = egress.flatMap((r) => (r.ports ?? []).map((p: K8s) => ({ port: p.port as number, to: (r.to ?? []) as K8s[] })));
        const expected = new Set<number>([53]);
        for (const s of Object.values(servers)) if (env[s.key]) expected.add(Number(new URL(env[s.key]!).port || s.port));
        for (const key of ['IDENTITY_GRPC_URL', 'CHAT_GRPC_URL', 'DIGEST_GRPC_URL', 'DELIVERY_WS_URL']) {
          if (!env[key] || !components[component] || !(key in components[component]!.schema)) continue;
          const port = Number(/:(\d+)$/.exec(env[key]!)![1]);
          expected.add(port);
          // Peers are reached only at the release's pods.
          const rule = allowed.filter((a) => a.port === port);
          expect(rule.length, `${component} → ${key}`).toBeGreaterThan(0);
          for (const r of rule) expect(r.to.length > 0 && r.to.every(isPodOfRelease), `${component} → ${key} only to pods`).toBe(true);
        }
        // A digest worker with a model key calls the model endpoint.
        if (component === 'digest-worker' && env.OPENAI_API_KEY) {
          const model = new URL(env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1');
          expected.add(Number(model.port || (model.protocol === 'https:' ? 443 : 80)));
        }
        // Delivery with a VAPID key (Web Push on) calls the browsers' push services over https.
        if (component === 'delivery' && env.PUSH_VAPID_PUBLIC_KEY) expected.add(443);
        for (const a of allowed) expect(expected.has(a.port), `${w.metadata.name} may reach port ${a.port}`).toBe(true);
        for (const p of expected) expect(allowed.some((a) => a.port === p), `${w.metadata.name} needs port ${p}`).toBe(true);
      }
    });
  });
});

describe('chart guards', () => {
  const fails = (args: string[]) => {
    const r = runHelm(helm.binary, templateArgs('default', args));
    expect(r.code).not.toBe(0);
    return r.stderr;
  };

  it('refuses a secret put into the ConfigMap through config.extra', () => {
    expect(fails(['--set', 'config.extra.OPENAI_API_KEY=sk-abc'])).toMatch(/looks like a secret/);
  });

  it('refuses to override a setting the chart derives (ports, addresses)', () => {
    expect(fails(['--set', 'config.extra.CHAT_GRPC_PORT=1'])).toMatch(/set by the chart/);
  });

  it('refuses an existing release Secret without the digest trust domain’s own Secret, and a malformed published key', () => {
    expect(fails(['--set', 'secrets.existingSecret=mine'])).toMatch(/digestExistingSecret/);
    expect(fails(['--set', 'digest.serviceIdentityKey=short'])).toMatch(/service-key/);
  });

  it('shows the published digest service key and its fingerprint in the notes, and passes it to the digest pods only', () => {
    const key = '6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw';
    const r = runHelm(helm.binary, templateArgs('default', ['--set', `digest.serviceIdentityKey=${key}`, '--set', 'postgresql.digestUrl=postgres://bil_digest@db:5432/bil']));
    expect(r.code, r.stderr).toBe(0);
    const notes = runHelm(helm.binary, ['install', 'bil-message', chartDir, '--namespace', release.namespace, '--dry-run=client', '--set', `digest.serviceIdentityKey=${key}`]);
    expect(notes.code, notes.stderr).toBe(0);
    expect(notes.stdout).toContain(key);
    // The CLI's and `service-key`'s fingerprint of this key (services/digest/src/service-key.unit.spec.ts computes the same way).
    const hex = createHash('sha256').update(Buffer.from(key, 'base64url')).digest('hex').slice(0, 32);
    expect(notes.stdout).toContain(`fingerprint  ${hex.match(/.{4}/g)!.join(' ')}`);
    const m = new Manifests(parseManifests(r.stdout));
    for (const w of m.workloads()) {
      const env = (mainContainer(w).env ?? []) as K8s[];
      const published = env.find((e) => e.name === 'DIGEST_SERVICE_IDENTITY_KEY')?.value;
      expect(published, w.metadata.name).toBe(DIGEST_DOMAIN.includes(componentOf(w)) ? key : undefined);
    }
    expect(Buffer.from(m.get('Secret', 'bil-message-digest').data.DATABASE_URL, 'base64').toString()).toBe('postgres://bil_digest@db:5432/bil');
    expect(Buffer.from(m.get('Secret', 'bil-message-migrate').data.DIGEST_DATABASE_URL, 'base64').toString()).toBe('postgres://bil_digest@db:5432/bil');
  });

  it('keeps attachments in an S3 bucket with chat.blobs.backend s3: settings for chat only, keys from the named Secret, accepted by its loader', () => {
    expect(fails(['--set', 'chat.blobs.backend=s3'])).toMatch(/chat\.blobs\.s3\.bucket/);
    expect(fails(['--set', 'chat.blobs.backend=disk'])).toMatch(/postgres/);
    const s3 = ['chat.blobs.backend=s3', 'chat.blobs.s3.bucket=bil-attachments', 'chat.blobs.s3.endpoint=https://s3.example.net', 'chat.blobs.s3.credentialsSecret=bil-s3'];
    const r = runHelm(helm.binary, templateArgs('default', s3.flatMap((v) => ['--set', v])));
    expect(r.code, r.stderr).toBe(0);
    const m = new Manifests(parseManifests(r.stdout));
    const env = containerEnv(m, mainContainer(m.deployment('chat')), ['bil-s3']);
    expect(env).toMatchObject({ CHAT_BLOB_BACKEND: 's3', CHAT_S3_BUCKET: 'bil-attachments', CHAT_S3_ENDPOINT: 'https://s3.example.net', CHAT_S3_ACCESS_KEY_ID: 'AKIAEXAMPLE' });
    expect(() => components.chat!.load(env)).not.toThrow();
    const egress = (m.get('NetworkPolicy', 'bil-message-chat').spec.egress as K8s[]).flatMap((e) => (e.ports as K8s[]).map((p) => p.port));
    expect(egress).toContain(443);
    for (const component of Object.keys(components).filter((c) => c !== 'chat')) {
      expect(JSON.stringify(mainContainer(m.deployment(component)).env ?? []), component).not.toContain('CHAT_S3');
    }
  });

  it('refuses malformed keys and misspelt values', () => {
    expect(fails(['--set', 'secrets.digestKeyEncryptionKey=short'])).toMatch(/43 characters/);
    expect(fails(['--set', 'secrets.jwtPrivateKey=not-a-pem'])).toMatch(/PKCS#8/);
    expect(fails(['--set', 'gateway.replicas=3'])).toMatch(/replicas/);
    expect(fails(['--set', 'secrets.serviceAuthSecret=short'])).toMatch(/serviceAuthSecret/);
    expect(fails(['--set', 'secrets.serviceAuthPreviousSecret=short'])).toMatch(/serviceAuthPreviousSecret/);
  });

  it('renders without the Ingress, NetworkPolicies and migration Job when they are off, and services then migrate at start', () => {
    const r = runHelm(helm.binary, templateArgs('default', ['--set', 'ingress.enabled=false', '--set', 'networkPolicy.enabled=false', '--set', 'migrations.enabled=false']));
    expect(r.code, r.stderr).toBe(0);
    const m = new Manifests(parseManifests(r.stdout));
    expect(m.ofKind('Ingress')).toEqual([]);
    expect(m.ofKind('NetworkPolicy')).toEqual([]);
    expect(m.ofKind('Job')).toEqual([]);
    expect(m.ofKind('Secret').map((s) => s.metadata.name)).toEqual(['bil-message', 'bil-message-digest']);
    expect(m.ofKind('ConfigMap')[0]!.data.IDENTITY_MIGRATE_ON_START).toBe('true');
    // Without an ingress in front, the gateway must not trust X-Forwarded-For.
    expect(m.ofKind('ConfigMap')[0]!.data.GATEWAY_TRUST_PROXY).toBe('false');
  });

  it('keeps explicitly given keys and never prints them in the ConfigMap', () => {
    const seed = 'c2VlZC1zZWVkLXNlZWQtc2VlZC1zZWVkLXNlZWQtc2U';
    const r = runHelm(helm.binary, templateArgs('default', ['--set', `secrets.digestServiceIdentitySeed=${seed}`]));
    expect(r.code, r.stderr).toBe(0);
    const m = new Manifests(parseManifests(r.stdout));
    expect(Buffer.from(m.get('Secret', 'bil-message-digest').data.DIGEST_SERVICE_IDENTITY_SEED, 'base64').toString()).toBe(seed);
    expect(JSON.stringify(m.ofKind('ConfigMap'))).not.toContain(seed);
    // The internal gRPC secret and the one being rotated out.
    const current = 'current-service-secret-0123456789-abcdef';
    const previous = 'previous-service-secret-0123456789-abcdef';
    const r2 = runHelm(helm.binary, templateArgs('default', ['--set', `secrets.serviceAuthSecret=${current}`, '--set', `secrets.serviceAuthPreviousSecret=${previous}`]));
    expect(r2.code, r2.stderr).toBe(0);
    const m2 = new Manifests(parseManifests(r2.stdout));
    const data = m2.get('Secret', 'bil-message').data;
    expect(Buffer.from(data.SERVICE_AUTH_SECRET, 'base64').toString()).toBe(current);
    expect(Buffer.from(data.SERVICE_AUTH_PREVIOUS_SECRET, 'base64').toString()).toBe(previous);
    expect(JSON.stringify(m2.ofKind('ConfigMap'))).not.toContain(current);
  });

  it('the chart folder has its documented values files', () => {
    for (const f of ['values.yaml', 'values.schema.json', 'values-production.example.yaml', 'Chart.yaml']) {
      expect(() => read(join('deploy/helm/bil-message', f)), f).not.toThrow();
    }
    expect(chartDir.endsWith('deploy/helm/bil-message')).toBe(true);
  });
});
