// The shipped manifests, as `kubectl kustomize` renders them: Istio resources against Istio's CRD
// schemas (fields, enums, patterns, CEL rules), the collector workload against the security and
// availability settings ops expect, and the wiring between the two — the Envoy cluster the filter posts
// to must be the collector Service, the path the one the AuthorizationPolicy admits, and so on.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig, SETTINGS } from "../../collector/config.ts";
import { INGEST_PATH } from "../../collector/server.ts";
import { SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S } from "../../collector/sink/snowflake.ts";
import { CrdValidator, celRulesEvaluated, type Resource } from "./crd-validator.ts";
import { kustomizations, render, requireKubectl, root } from "./render.ts";

const crds = new CrdValidator(join(root, "test", "fixtures", "reference", "istio"));
const rendered = new Map<string, Resource[]>();
const isIstio = (r: Resource) => /\.istio\.io\//.test(r.apiVersion);
const ofKind = (dir: string, kind: string) => rendered.get(dir)!.filter((r) => r.kind === kind);
const one = (dir: string, kind: string) => {
  const found = ofKind(dir, kind);
  expect(found, `${dir}: one ${kind}`).toHaveLength(1);
  return found[0];
};
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

const istioOverlays = kustomizations("deploy/istio/overlays");
const collectorOverlays = kustomizations("deploy/collector/overlays");

beforeAll(() => {
  requireKubectl();
  for (const dir of kustomizations("deploy")) rendered.set(dir, render(join(root, dir)));
});

describe("kustomize", () => {
  it("renders every kustomization under deploy/ into well-formed objects", () => {
    expect(istioOverlays.map((d) => d.split("/").pop())).toEqual(["gateway-api", "ingress-gateway", "mesh", "namespace", "outbound"]);
    expect(collectorOverlays.map((d) => d.split("/").pop())).toEqual(["duckdb", "snowflake"]);
    expect(rendered.size).toBeGreaterThanOrEqual(istioOverlays.length + collectorOverlays.length + 4);
    for (const [dir, objects] of rendered) {
      expect(objects.length, dir).toBeGreaterThan(0);
      for (const r of objects) {
        expect(r.apiVersion, `${dir} ${r.kind}`).toMatch(/^([a-z0-9.-]+\/)?v\d/);
        expect(r.kind, dir).toMatch(/^[A-Z]\w+$/);
        expect(r.metadata?.name, `${dir} ${r.kind}`).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
        // Secrets are created by ops; a rendered Secret would put credentials into the repository.
        expect(r.kind, dir).not.toBe("Secret");
      }
    }
  });
});

/**
 * The Kubernetes API schema of a built-in object (kubernetes-models, generated from Kubernetes' OpenAPI),
 * or of the Prometheus Operator's ServiceMonitor. Types, enums and required fields; not unknown fields,
 * which the security and wiring checks below pin where they matter.
 */
async function kubeModel(r: Resource): Promise<{ validate(): void }> {
  const [group, version] = r.apiVersion.includes("/") ? r.apiVersion.split("/") : ["", r.apiVersion];
  const path =
    group === "monitoring.coreos.com" ? `@kubernetes-models/prometheus-operator/${r.apiVersion}/${r.kind}` : `kubernetes-models/${group ? `${group}/` : ""}${version}/${r.kind}`;
  const Model = (await import(path))[r.kind];
  return new Model(r);
}

describe("Kubernetes resources against the Kubernetes API schemas", () => {
  it("validate", async () => {
    const problems: string[] = [];
    let checked = 0;
    for (const [dir, objects] of rendered) {
      for (const r of objects.filter((o) => !isIstio(o))) {
        try {
          (await kubeModel(r)).validate();
        } catch (err) {
          problems.push(`${dir} ${r.kind}/${r.metadata.name}: ${(err as Error).message}`);
        }
        checked++;
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(2 * 5 + 1);
  });

  it("refuse a StatefulSet with a wrongly typed field", async () => {
    const sts = structuredClone(one("deploy/collector/overlays/duckdb", "StatefulSet"));
    sts.spec.template.spec.containers[0].ports[0].containerPort = "8080";
    const model = await kubeModel(sts);
    expect(() => model.validate()).toThrow(/containerPort must be integer/);
  });
});

describe("Istio resources against the CRD schemas", () => {
  it("validate, including every CEL rule on their path", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const [dir, objects] of rendered) {
      for (const r of objects.filter(isIstio)) {
        if (!crds.has(r)) problems.push(`${dir}: no CRD schema for ${r.apiVersion} ${r.kind}`);
        else problems.push(...crds.validate(r).map((p) => `${dir}: ${p}`));
        checked++;
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(istioOverlays.length + 2 * 3 + 1);
    // The WasmPlugin rules the manifests exercise: url scheme, selector XOR targetRefs, HOST env without a
    // value, label keys/values without wildcards.
    const rules = [...celRulesEvaluated].join("\n");
    for (const fragment of ["getScheme()", "has(self.targetRefs)", '"HOST" || !has(self.value)', '!key.contains("*")', '!self.contains("*")']) {
      expect(rules).toContain(fragment);
    }
  });

  it("refuses WasmPlugins that break the schema or its CEL rules", () => {
    const good = one("deploy/istio/overlays/ingress-gateway", "WasmPlugin");
    expect(crds.validate(good)).toEqual([]);
    const broken = (mutate: (spec: any) => void) => {
      const r = structuredClone(good);
      mutate(r.spec);
      return crds.validate(r).join("\n");
    };
    expect(broken((s) => (s.targetRefs = [{ kind: "Gateway", name: "ingress" }]))).toContain("only one of targetRefs or selector");
    expect(broken((s) => (s.url = "ftp://registry.example.com/meshlook"))).toContain("url must have schema");
    expect(broken((s) => (s.vmConfig.env[0].value = "secret"))).toContain("value may only be set when valueFrom is INLINE");
    expect(broken((s) => (s.failStratgy = s.failStrategy))).toContain("(failStratgy)");
    expect(broken((s) => (s.failStrategy = "FAIL_SOFT"))).toContain("allowed values");
    expect(broken((s) => (s.sha256 = "ABC"))).toContain("must match pattern");
    expect(broken((s) => (s.selector.matchLabels = { "istio*": "ingressgateway" }))).toContain("wildcard not allowed");
    expect(broken((s) => s.vmConfig.env.push({ name: "MESHLOOK_INGEST_TOKEN" }))).toContain("duplicate items");
  });
});

describe("WasmPlugin overlays", () => {
  it("fail open in the STATS phase, take the token from the proxy's environment, never from pluginConfig", () => {
    for (const dir of istioOverlays) {
      const p = one(dir, "WasmPlugin");
      expect(p.spec, dir).toMatchObject({ phase: "STATS", failStrategy: "FAIL_OPEN", type: "HTTP", pluginName: "meshlook" });
      expect(p.spec.vmConfig.env, dir).toEqual([{ name: "MESHLOOK_INGEST_TOKEN", valueFrom: "HOST" }]);
      expect(JSON.stringify(p.spec.pluginConfig).toLowerCase(), dir).not.toMatch(/token|bearer|authorization/);
      expect(p.metadata.namespace, dir).toBeTruthy();
    }
  });

  it("report inbound by default; client-side overlays report outbound, so each listener reports its own direction", () => {
    const direction = { SERVER: "inbound", CLIENT: "outbound" } as const;
    for (const dir of istioOverlays) {
      const p = one(dir, "WasmPlugin");
      const modes: (keyof typeof direction)[] = p.spec.match.map((m: { mode: keyof typeof direction }) => m.mode);
      expect(p.spec.pluginConfig.directions, dir).toEqual(modes.map((m) => direction[m]));
    }
    expect(one("deploy/istio/overlays/namespace", "WasmPlugin").spec.match).toEqual([{ mode: "SERVER" }]);
    expect(one("deploy/istio/overlays/mesh", "WasmPlugin").metadata.namespace).toBe("istio-system");
  });

  it("attach to the ingress gateway by selector and to a Gateway API gateway by targetRefs", () => {
    const selected = one("deploy/istio/overlays/ingress-gateway", "WasmPlugin").spec;
    expect(selected.selector).toEqual({ matchLabels: { istio: "ingressgateway" } });
    expect(selected.match).toEqual([{ mode: "CLIENT" }]);
    const targeted = one("deploy/istio/overlays/gateway-api", "WasmPlugin").spec;
    expect(targeted.targetRefs).toEqual([{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "ingress" }]);
    expect(targeted.selector).toBeUndefined();
    // Overlays meant to be combined in one namespace must not collide by name.
    const ids = istioOverlays.map((d) => one(d, "WasmPlugin")).map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe.each(collectorOverlays)("collector %s", (dir) => {
  const objects = () => rendered.get(dir)!;
  const sts = () => one(dir, "StatefulSet");
  const pod = () => sts().spec.template;
  const container = () => {
    expect(pod().spec.containers).toHaveLength(1);
    return pod().spec.containers[0];
  };
  const env = () => Object.fromEntries(container().env.map((e: { name: string; value?: string }) => [e.name, e.value]));

  it("runs in the meshlook namespace, with sidecar injection on", () => {
    const ns = one(dir, "Namespace");
    expect(ns.metadata.name).toBe("meshlook");
    expect(ns.metadata.labels?.["istio-injection"]).toBe("enabled");
    for (const r of objects().filter((r) => r.kind !== "Namespace")) expect(r.metadata.namespace, r.kind).toBe("meshlook");
  });

  it("has one replica per DuckDB file, at least two with Snowflake, each with its own spool volume", () => {
    const s = sts().spec;
    if (dir.endsWith("duckdb")) expect(s.replicas).toBe(1);
    else expect(s.replicas).toBeGreaterThanOrEqual(2);
    expect(s.volumeClaimTemplates.map((v: Resource) => v.metadata.name)).toEqual(["data"]);
    expect(s.volumeClaimTemplates[0].spec.accessModes).toEqual(["ReadWriteOnce"]);
    expect(container().volumeMounts).toContainEqual({ name: "data", mountPath: env().MESHLOOK_DATA_DIR });
    expect(matches(s.selector.matchLabels, pod().metadata.labels)).toBe(true);
  });

  it("is hardened: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp", () => {
    const ps = pod().spec.securityContext;
    expect(ps.runAsNonRoot).toBe(true);
    expect(ps.runAsUser).toBeGreaterThan(0);
    expect(ps.seccompProfile).toEqual({ type: "RuntimeDefault" });
    const cs = container().securityContext;
    expect(cs).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false });
    expect(cs.capabilities.drop).toEqual(["ALL"]);
    expect(cs.capabilities.add).toBeUndefined();
    expect(pod().spec.automountServiceAccountToken).toBe(false);
    // A read-only root needs a writable /tmp for the runtime.
    const tmp = container().volumeMounts.find((m: { mountPath: string }) => m.mountPath === "/tmp");
    expect(pod().spec.volumes.find((v: { name: string }) => v.name === tmp?.name)?.emptyDir).toBeDefined();
  });

  it("probes /healthz and /readyz on the serving port and bounds its resources", () => {
    const c = container();
    const port = c.ports.find((p: { name: string }) => p.name === "http");
    expect(port.containerPort).toBe(Number(env().MESHLOOK_PORT));
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(c.startupProbe.httpGet.path).toBe("/healthz");
    for (const k of ["requests", "limits"]) {
      expect(c.resources[k].cpu, k).toBeTruthy();
      expect(c.resources[k].memory, k).toBeTruthy();
    }
  });

  it("is configured only with settings the collector knows, which it accepts", () => {
    const known = new Set(SETTINGS.map((s) => `MESHLOOK_${s.env}`));
    for (const name of Object.keys(env())) expect(known, name).toContain(name);
    // The overlay names where the key secret is mounted in the pod; the start-up check opens that file, so
    // it is pointed at an equivalent key (encrypted, with its passphrase file) made for this test.
    const e = env();
    if (e.MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE) {
      const keys = mkdtempSync(join(tmpdir(), "meshlook-sf-key-"));
      const passphrase = "manifest-test";
      const { privateKey } = generateKeyPairSync("rsa", {
        modulusLength: 2048,
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase },
      });
      e.MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE = join(keys, "private-key.p8");
      writeFileSync(e.MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE, privateKey, { mode: 0o600 });
      if (e.MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE) {
        e.MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE = join(keys, "passphrase");
        writeFileSync(e.MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE, passphrase, { mode: 0o600 });
      }
    }
    const cfg = loadConfig(e);
    expect(cfg.sink).toBe(dir.endsWith("duckdb") ? "duckdb" : "snowflake");
    // Snowflake loads at the interval its cost analysis recommends; DuckDB keeps the collector default.
    if (cfg.sink === "snowflake") expect(cfg.loadIntervalS).toBe(SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S);
    expect(cfg.port).toBe(8080);
    expect(cfg.authDisabled).toBe(false);
    // The controls of docs/security.md are on in the shipped deployment.
    expect(cfg.trustXfcc).toBe(true);
    expect(cfg.metricsPort).toBe(9090);
    expect(cfg.rateLimitPerMinute).toBeGreaterThan(0);
    expect(cfg.maxWindowAgeS).toBeGreaterThan(0);
    expect(cfg.maxWindowAheadS).toBeGreaterThan(0);
    const limit = sts().spec.template.spec.containers[0].resources.limits.memory;
    expect(limit).toBe("1Gi");
    expect(cfg.maxRssBytes).toBeGreaterThan(0);
    expect(cfg.maxRssBytes).toBeLessThan(2 ** 30);
  });

  it("references its secrets as mounted files and never inlines one", () => {
    const e = env();
    for (const name of ["MESHLOOK_INGEST_TOKENS", "MESHLOOK_SNOWFLAKE_PASSWORD", "MESHLOOK_AUTH_DISABLED"]) expect(e).not.toHaveProperty(name);
    const files = Object.entries(e).filter(([k]) => k.endsWith("_FILE"));
    expect(files.map(([k]) => k)).toContain("MESHLOOK_INGEST_TOKENS_FILE");
    if (dir.endsWith("snowflake")) expect(files.map(([k]) => k)).toContain("MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE");
    for (const [name, path] of files) {
      const mount = container().volumeMounts.find((m: { mountPath: string }) => path!.startsWith(m.mountPath + "/"));
      expect(mount, name).toBeDefined();
      expect(mount.readOnly, name).toBe(true);
      const secret = pod().spec.volumes.find((v: { name: string }) => v.name === mount.name).secret;
      expect(secret?.secretName, name).toMatch(/^meshlook-/);
      expect(
        secret.items.map((i: { path: string }) => i.path),
        name,
      ).toContain(path!.slice(mount.mountPath.length + 1));
    }
  });

  it("is reachable through its Service, kept up by a PodDisruptionBudget, and scraped for /metrics on a port of its own", () => {
    const labels = pod().metadata.labels;
    const svc = one(dir, "Service");
    expect(matches(svc.spec.selector, labels)).toBe(true);
    expect(svc.spec.ports).toEqual([
      expect.objectContaining({ name: "http", port: 8080, targetPort: "http" }),
      expect.objectContaining({ name: "http-metrics", port: 9090, targetPort: "metrics" }),
    ]);
    const containerPorts = sts().spec.template.spec.containers[0].ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]);
    expect(containerPorts).toEqual([
      ["http", 8080],
      ["metrics", 9090],
    ]);
    expect(env().MESHLOOK_METRICS_PORT).toBe("9090");
    expect(sts().spec.serviceName).toBe(svc.metadata.name);
    const pdb = one(dir, "PodDisruptionBudget");
    expect(matches(pdb.spec.selector.matchLabels, labels)).toBe(true);
    expect(pdb.spec.maxUnavailable).toBe(1);
    // prometheus.io annotations would make Istio serve the merged metrics on :15020, unauthenticated.
    const ann = pod().metadata.annotations;
    expect(Object.keys(ann).filter((k) => k.startsWith("prometheus.io/"))).toEqual([]);
    expect(ann["prometheus.istio.io/merge-metrics"]).toBe("false");
    const sm = one("deploy/collector/monitoring", "ServiceMonitor");
    expect(matches(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
    expect(sm.spec.namespaceSelector.matchNames).toEqual([svc.metadata.namespace]);
    expect(sm.spec.endpoints.map((e: { port: string; path: string }) => [e.port, e.path])).toEqual([["http-metrics", "/metrics"]]);
  });

  it("admits summaries only over mTLS from the namespaces that run the filter, and /metrics only from monitoring on its port", () => {
    const labels = pod().metadata.labels;
    const pa = one(dir, "PeerAuthentication");
    expect(matches(pa.spec.selector.matchLabels, labels)).toBe(true);
    expect(pa.spec.mtls).toEqual({ mode: "STRICT" });
    const ap = one(dir, "AuthorizationPolicy");
    expect(matches(ap.spec.selector.matchLabels, labels)).toBe(true);
    expect(ap.spec.action).toBe("ALLOW");
    const rules = ap.spec.rules.map((r: any) => ({ from: r.from[0].source, ...r.to[0].operation }));
    // The namespace overlay's namespace is the one the policy admits as shipped.
    const filtered = one("deploy/istio/overlays/namespace", "WasmPlugin").metadata.namespace;
    expect(rules).toEqual([
      { from: { namespaces: [filtered] }, methods: ["POST"], paths: ["/v1/summaries"], ports: ["8080"] },
      { from: { namespaces: ["monitoring"] }, methods: ["GET"], paths: ["/metrics"], ports: ["9090"] },
    ]);
    expect(JSON.stringify(ap.spec)).not.toContain('"*"');
  });

  it("has its sidecar hand the collector only the client-certificate element it wrote itself", () => {
    // The collector binds writes to the URI in x-forwarded-client-cert (MESHLOOK_TRUST_XFCC); with
    // SANITIZE_SET the sidecar drops whatever the caller sent under that name (Envoy
    // mutateXfccRequestHeader), whatever the mesh-wide default says.
    expect(env().MESHLOOK_TRUST_XFCC).toBe("true");
    const proxyConfig = JSON.parse(pod().metadata.annotations["proxy.istio.io/config"]);
    expect(proxyConfig.proxyHeaders).toEqual({ forwardedClientCert: "SANITIZE_SET" });
  });

  it("ships a NetworkPolicy: ingest from namespaces labelled meshlook.io/filter=enabled, metrics from monitoring", () => {
    const np = one(dir, "NetworkPolicy");
    expect(matches(np.spec.podSelector.matchLabels, pod().metadata.labels)).toBe(true);
    expect(np.spec.policyTypes).toEqual(["Ingress"]);
    const rules = np.spec.ingress.map((r: any) => ({ from: r.from.map((f: any) => f.namespaceSelector.matchLabels), ports: r.ports.map((p: any) => p.port) }));
    expect(rules).toEqual([
      { from: [{ "meshlook.io/filter": "enabled" }], ports: [8080] },
      { from: [{ "kubernetes.io/metadata.name": "monitoring" }], ports: [9090] },
    ]);
    // No podSelector beside a namespaceSelector (that would be "and"), no ipBlock: only labelled namespaces.
    for (const r of np.spec.ingress) for (const f of r.from) expect(Object.keys(f)).toEqual(["namespaceSelector"]);
  });

  it("is the collector every WasmPlugin posts to, and every sidecar has its cluster", () => {
    const svc = one(dir, "Service");
    const fqdn = `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
    const ingestPath = one(dir, "AuthorizationPolicy").spec.rules[0].to[0].operation.paths[0];
    expect(ingestPath).toBe(INGEST_PATH);
    for (const o of istioOverlays) {
      const { collector } = one(o, "WasmPlugin").spec.pluginConfig;
      expect(collector.cluster, o).toBe(`outbound|${svc.spec.ports[0].port}||${fqdn}`);
      expect(collector.authority, o).toBe(fqdn);
      expect(collector.path, o).toBe(ingestPath);
    }
    const dr = one(dir, "DestinationRule");
    expect(dr.spec.host).toBe(fqdn);
    expect(dr.spec.exportTo).toEqual(["*"]);
    expect(dr.spec.trafficPolicy.tls.mode).toBe("ISTIO_MUTUAL");
    // A namespace Sidecar replaces the mesh default and narrows the namespace's egress to what it lists:
    // nothing shipped may carry one (docs/operations.md says how to extend an existing one instead).
    for (const [dir, objects] of rendered)
      expect(
        objects.filter((o) => o.kind === "Sidecar"),
        dir,
      ).toEqual([]);
  });
});
