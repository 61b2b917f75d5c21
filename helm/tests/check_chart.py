#!/usr/bin/env python3
"""Checks the Helm chart helm/sso-proxy with the real Helm v4 library (helm-python-sdk).

Run it with the venv made by helm/tests/setup.sh (scripts/test.sh does both):

    bash helm/tests/setup.sh && .venv-helm/bin/python helm/tests/check_chart.py

What it checks, one PASS/FAIL line each (exit status 1 on any FAIL):

- `helm lint --strict` of the chart with the default, the full standalone and the sidecar values;
- rendered manifests, structurally: which kinds each mode renders, probes, security contexts,
  the Secret read with envFrom, volumes, ports, and the wiring between the objects (Service →
  pods, Ingress → Service, ServiceMonitor → metrics Service, HPA → Deployment, PVC → volume);
- every rendered object against the Kubernetes OpenAPI schemas (kubernetes-validate, strict,
  for the oldest and the newest Kubernetes version it knows that the chart supports);
- that values.schema.json and the chart's own guards REJECT bad values (render and lint fail);
- the real proxy binary (`SSO_PROXY_BIN`, default target/debug/sso-proxy) accepts each rendered
  config.yaml with `--check-config` and the Secret's variables (exit 0), and refuses a broken
  one (exit 64);
- the sidecar post-renderer (sidecar/): its patch applied to ClearML-like manifests, and, when
  kustomize or kubectl is installed, post-render.sh itself;
- values.schema.json has every key of the README's configuration reference, and every value of
  values.yaml is in the schema and in the chart README's table.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sso-proxy"
SIDECAR = CHART / "sidecar"
VALUES = ROOT / "helm" / "tests" / "values"
RELEASE = "sso-proxy"
NAMESPACE = "sso"
# The chart's kubeVersion floor (Chart.yaml) and the newest version kubernetes-validate has.
KUBE_VERSIONS = ["1.25.0", kubernetes_validate.utils.latest_version()]
EXIT_CONFIG = 64  # the proxy's exit code for an invalid configuration


def _binary() -> Path:
    raw = os.environ.get("SSO_PROXY_BIN", "target/debug/sso-proxy")
    path = Path(raw)
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else (ROOT / path)
    return path


BIN = _binary()


# --- reporting --------------------------------------------------------------------------------


class CheckFailed(Exception):
    """A check's expectation did not hold; the message says which."""


def expect(condition: Any, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


RESULTS: list[tuple[str, str]] = []


def check(name: str, fn: Callable[[], str | None]) -> None:
    """Runs one check and prints its PASS/FAIL (or SKIP) line."""
    try:
        detail = fn()
    except Skip as skip:
        RESULTS.append(("SKIP", name))
        print(f"SKIP {name}: {skip}", flush=True)
        return
    except CheckFailed as failure:
        RESULTS.append(("FAIL", name))
        print(f"FAIL {name}: {failure}", flush=True)
        return
    except Exception:  # noqa: BLE001 - an unexpected error is a failure of that check
        RESULTS.append(("FAIL", name))
        print(f"FAIL {name}: unexpected error\n{traceback.format_exc()}", flush=True)
        return
    RESULTS.append(("PASS", name))
    print(f"PASS {name}" + (f" ({detail})" if detail else ""), flush=True)


class Skip(Exception):
    """The check cannot run on this machine (only for optional tools)."""


# --- rendering --------------------------------------------------------------------------------


class Manifests:
    """The objects of one render, with the values that produced them."""

    def __init__(self, values: dict[str, Any], merged: dict[str, Any], docs: list[dict[str, Any]]):
        self.values = values
        self.merged = merged
        self.docs = docs

    def kinds(self) -> list[str]:
        return sorted(d["kind"] for d in self.docs)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        expect(len(found) == 1, f"expected one {kind}{' ' + name if name else ''}, found {len(found)}")
        return found[0]


def load_values(name: str) -> dict[str, Any]:
    with open(name if os.path.isabs(name) else VALUES / name, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def render(values: dict[str, Any] | None = None, release: str = RELEASE) -> Manifests:
    values = copy.deepcopy(values or {})
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name=release, namespace=NAMESPACE, is_install=True)
        merged = chart.merge_values(values)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return Manifests(values, merged, docs)


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return helm.lint(str(CHART), copy.deepcopy(values), strict=True, namespace=NAMESPACE)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def secret_env(m: Manifests) -> dict[str, str]:
    """The variables the chart's Secret gives the pod (keys are variable names)."""
    return {k: base64.b64decode(v).decode() for k, v in (m.one("Secret").get("data") or {}).items()}


# --- the pod, as the chart renders it in standalone mode --------------------------------------


def container_of(deployment: dict[str, Any], name: str = "sso-proxy") -> dict[str, Any]:
    found = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    expect(len(found) == 1, f"no container {name!r} in Deployment {deployment['metadata']['name']}")
    return found[0]


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def check_pod(m: Manifests) -> str:
    """Probes, security, secrets, volumes and ports of the standalone Deployment."""
    config = m.merged["config"]
    dep = m.one("Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = container_of(dep)
    http_port = port_of(config.get("listen", "0.0.0.0:4180"))

    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    expect(ports.get("http") == http_port, f"container port http is {ports.get('http')}, config.listen says {http_port}")
    metrics = (config.get("metrics") or {}).get("listen")
    if metrics:
        expect(ports.get("metrics") == port_of(metrics), f"container port metrics {ports.get('metrics')} != config.metrics.listen")
    else:
        expect("metrics" not in ports, "a metrics port without config.metrics.listen")

    tls = bool((config.get("tls") or {}).get("cert_file"))
    for probe, path in (("livenessProbe", "/_sso/healthz"), ("readinessProbe", "/_sso/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        expect(get.get("path") == path, f"{probe} path is {get.get('path')!r}, want {path}")
        expect(get.get("port") in ("http", http_port), f"{probe} port is {get.get('port')!r}, want the main port")
        expect(get.get("scheme", "HTTP") == ("HTTPS" if tls else "HTTP"), f"{probe} scheme {get.get('scheme')}")

    psc, sc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    expect(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, f"pod securityContext not non-root 65532: {psc}")
    expect(psc.get("fsGroup") == 65532, "pod securityContext has no fsGroup 65532 (state volume not writable)")
    expect((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "pod seccompProfile is not RuntimeDefault")
    expect(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532, f"container not non-root 65532: {sc}")
    expect(sc.get("readOnlyRootFilesystem") is True, "container root filesystem is not read-only")
    expect(sc.get("allowPrivilegeEscalation") is False, "container allows privilege escalation")
    expect((sc.get("capabilities") or {}).get("drop") == ["ALL"], f"capabilities.drop is {(sc.get('capabilities') or {}).get('drop')}")
    expect((sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "container seccompProfile is not RuntimeDefault")
    expect(pod.get("automountServiceAccountToken") is False, "the ServiceAccount token is mounted")
    expect(c.get("resources", {}).get("limits", {}).get("memory"), "no memory limit")

    secret_name = m.values.get("secret", {}).get("existingSecret") or f"{RELEASE}"
    refs = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
    expect(secret_name in refs, f"envFrom does not read Secret {secret_name!r} (reads {refs})")
    for env in c.get("env", []):
        expect("SECRET" not in env["name"].upper() or "valueFrom" in env, f"plain-text secret variable {env['name']}")

    # --config FILE is the ConfigMap's config.yaml, mounted read-only.
    args = c.get("args", [])
    expect("--config" in args, f"no --config in args {args}")
    config_path = args[args.index("--config") + 1]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {vm["mountPath"]: vm for vm in c["volumeMounts"]}
    mount_dir, key = config_path.rsplit("/", 1)
    expect(mount_dir in mounts, f"{config_path}: nothing mounted at {mount_dir}")
    cm_volume = volumes[mounts[mount_dir]["name"]]
    expect((cm_volume.get("configMap") or {}).get("name") == m.one("ConfigMap")["metadata"]["name"], "the config mount is not the chart's ConfigMap")
    expect(key in m.one("ConfigMap")["data"], f"ConfigMap has no key {key}")
    expect(mounts[mount_dir].get("readOnly") is True, "the config mount is writable")

    # The SQLite state and /tmp are on writable volumes (the root filesystem is read-only).
    state_path = (config.get("state") or {}).get("path", "sso-proxy.db")
    mount_path = m.merged["persistence"]["mountPath"].rstrip("/")
    expect(c.get("workingDir") == mount_path, f"workingDir {c.get('workingDir')} is not the state mount {mount_path}")
    if state_path != ":memory:":
        expect(not state_path.startswith("/") or state_path.startswith(mount_path + "/"), f"state.path {state_path} not under {mount_path}")
    expect(mount_path in mounts and "/tmp" in mounts, "state or /tmp volume not mounted")
    state_volume = volumes[mounts[mount_path]["name"]]
    if m.merged["persistence"]["enabled"]:
        claim = m.merged["persistence"]["existingClaim"] or RELEASE
        expect((state_volume.get("persistentVolumeClaim") or {}).get("claimName") == claim, f"state volume is not the claim {claim}: {state_volume}")
    else:
        expect("emptyDir" in state_volume, f"state volume is not an emptyDir: {state_volume}")
    expect("emptyDir" in volumes[mounts["/tmp"]["name"]], "/tmp is not an emptyDir")

    # The Service reaches these pods on the main port.
    labels = dep["spec"]["template"]["metadata"]["labels"]
    expect(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "Deployment selector does not match its pods")
    svc = m.one("Service", RELEASE)
    expect(svc["spec"]["selector"].items() <= labels.items(), "Service selector does not match the pods")
    expect(svc["spec"]["ports"][0]["targetPort"] in ("http", http_port), "Service does not target the main port")
    return f"port {http_port}, Secret {secret_name}"


def check_config_yaml(m: Manifests) -> None:
    text = m.one("ConfigMap")["data"]["config.yaml"]
    parsed = yaml.safe_load(text)
    expect(isinstance(parsed, dict), "config.yaml is not a YAML mapping")
    expect(parsed == m.merged["config"], "config.yaml differs from values.config")


# --- the proxy binary -------------------------------------------------------------------------


def run_check_config(config_yaml: str, env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """Runs `sso-proxy --config <file> --check-config` with only `env` (plus PATH) set."""
    expect(BIN.is_file(), f"{BIN} does not exist: build it with `cargo build --bin sso-proxy` or set SSO_PROXY_BIN")
    etc = workdir / "etc" / "sso-proxy"
    etc.mkdir(parents=True, exist_ok=True)
    path = etc / "config.yaml"
    path.write_text(config_yaml, encoding="utf-8")
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}
    return subprocess.run(
        [str(BIN), "--config", str(path), "--check-config"],
        env=clean, cwd=workdir, capture_output=True, text=True, timeout=60, check=False,
    )


def pod_env(m: Manifests, container: dict[str, Any], dummy_for_existing: dict[str, str]) -> dict[str, str]:
    """What the container's environment would be: the Secret (or dummies for an existing one)
    read by envFrom, then its plain `env` entries."""
    env: dict[str, str] = {}
    if m.all("Secret"):
        env.update(secret_env(m))
    else:
        env.update(dummy_for_existing)
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
    return env


def proxy_accepts(m: Manifests, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sso-proxy-chart-") as tmp:
        result = run_check_config(m.one("ConfigMap")["data"]["config.yaml"], env, Path(tmp))
    expect(result.returncode == 0, f"--check-config exited {result.returncode}: {result.stderr.strip()}")
    effective = yaml.safe_load(result.stdout)
    expect(isinstance(effective, dict), "--check-config printed no YAML mapping")
    expect((effective.get("session") or {}).get("secret") == "<redacted>", "session.secret did not reach the proxy")
    return effective


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def random_secret() -> str:
    return secrets.token_urlsafe(36)


def sp_key_pair() -> tuple[str, str]:
    """A throw-away RSA key and self-signed certificate (PEM) for a signing SAML connection."""
    openssl = shutil.which("openssl")
    expect(openssl, "openssl is not installed (needed to make a SAML SP key for the check)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp}/k.pem",
             "-out", f"{tmp}/c.pem", "-days", "2", "-subj", "/CN=sso-proxy-chart-check"],
            check=True, capture_output=True, timeout=60,
        )
        return Path(f"{tmp}/k.pem").read_text(), Path(f"{tmp}/c.pem").read_text()


# --- Kubernetes schemas -----------------------------------------------------------------------


def kube_validate(docs: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """Validates each object (strict: unknown fields are errors); returns (checked, skipped kinds)."""
    checked, skipped = 0, []
    for doc in docs:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                checked += 1
            except kubernetes_validate.SchemaNotFoundError:
                skipped.append(doc["kind"])
                break
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                raise CheckFailed(f"{doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {version}: {where}: {e.message}") from None
    return checked, sorted(set(skipped))


# --- the sidecar patch ------------------------------------------------------------------------


def clearml_like_manifests() -> list[dict[str, Any]]:
    """What ClearML's chart (release `clearml`) renders for the webserver, in outline."""
    labels = {"app.kubernetes.io/name": "clearml-webserver", "app.kubernetes.io/instance": "clearml"}
    return [
        {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "clearml-webserver", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{
                            "name": "clearml-webserver",
                            "image": "allegroai/clearml:latest",
                            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "WEBSERVER__apiBaseUrl", "value": '"/api"'}],
                        }],
                    },
                },
            },
        },
        {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "clearml-webserver", "labels": labels},
            "spec": {"type": "ClusterIP", "selector": labels,
                     "ports": [{"name": "http", "port": 8080, "targetPort": 80, "protocol": "TCP"}]},
        },
    ]


def strategic_merge(base: Any, patch: Any) -> Any:
    """Kubernetes strategic merge, for what webserver-sidecar.yaml uses: maps merge, null
    deletes, lists of named objects merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = strategic_merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out
    named = lambda xs: isinstance(xs, list) and all(isinstance(x, dict) and "name" in x for x in xs)  # noqa: E731
    if named(base) and named(patch):
        out = [copy.deepcopy(x) for x in base]
        index = {x["name"]: i for i, x in enumerate(out)}
        for p in patch:
            if p["name"] in index:
                out[index[p["name"]]] = strategic_merge(out[index[p["name"]]], p)
            else:
                out.append(copy.deepcopy(p))
        return out
    return copy.deepcopy(patch)


def json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for op in ops:
        expect(op["op"] == "replace", f"unexpected JSON patch op {op['op']}")
        *parents, last = [int(p) if p.isdigit() else p for p in op["path"].strip("/").split("/")]
        node = out
        for p in parents:
            node = node[p]
        node[last] = op["value"]
    return out


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def check_sidecar_wiring(patched: list[dict[str, Any]], chart: Manifests) -> None:
    """The patched webserver pod runs the proxy from the chart's ConfigMap and Secret."""
    dep = next(d for d in patched if d["kind"] == "Deployment")
    svc = next(d for d in patched if d["kind"] == "Service")
    pvc = [d for d in patched if d["kind"] == "PersistentVolumeClaim"]
    pod = dep["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    expect(sorted(names) == ["clearml-webserver", "sso-proxy"], f"webserver pod containers are {names}")
    expect(dep["spec"]["strategy"] == {"type": "Recreate"}, f"strategy is {dep['spec']['strategy']}")
    c = container_of(dep)
    config = yaml.safe_load(chart.one("ConfigMap")["data"]["config.yaml"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    expect(ports.get("sso") == port_of(config["listen"]), f"sidecar port {ports.get('sso')} != config.listen {config['listen']}")
    webserver_port = container_of(dep, "clearml-webserver")["ports"][0]["containerPort"]
    expect(config["upstream"].rstrip("/") == f"http://127.0.0.1:{webserver_port}", f"upstream {config['upstream']} is not the webserver's port {webserver_port}")
    expect(svc["spec"]["ports"][0]["targetPort"] == "sso", f"webserver Service targets {svc['spec']['ports'][0]['targetPort']}")
    refs = [e["secretRef"]["name"] for e in c.get("envFrom", [])]
    expect(refs == [chart.one("Secret")["metadata"]["name"]], f"sidecar reads Secret {refs}, the chart renders {chart.one('Secret')['metadata']['name']}")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {vm["mountPath"]: vm["name"] for vm in c["volumeMounts"]}
    args = c["args"]
    config_dir, key = args[args.index("--config") + 1].rsplit("/", 1)
    expect(volumes[mounts[config_dir]].get("configMap", {}).get("name") == chart.one("ConfigMap")["metadata"]["name"], "sidecar config volume is not the chart's ConfigMap")
    expect(key in chart.one("ConfigMap")["data"], f"ConfigMap has no {key}")
    state_dir = config["state"]["path"].rsplit("/", 1)[0]
    expect(state_dir in mounts and "persistentVolumeClaim" in volumes[mounts[state_dir]], f"state.path {config['state']['path']} is not on the PVC")
    claim = volumes[mounts[state_dir]]["persistentVolumeClaim"]["claimName"]
    expect([p["metadata"]["name"] for p in pvc] == [claim], f"PVC {claim} is not in the output")
    sc = c["securityContext"]
    expect(sc.get("readOnlyRootFilesystem") and sc.get("runAsUser") == 65532 and sc["capabilities"]["drop"] == ["ALL"], f"sidecar securityContext {sc}")
    expect("/tmp" in mounts, "sidecar has no writable /tmp")
    for probe, path in (("livenessProbe", "/_sso/healthz"), ("readinessProbe", "/_sso/readyz")):
        expect(c[probe]["httpGet"]["path"] == path and c[probe]["httpGet"]["port"] == "sso", f"sidecar {probe} {c[probe]}")


# --- documentation and schema coverage --------------------------------------------------------


def readme_config_keys() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("<!-- config-reference:start -->")[1].split("<!-- config-reference:end -->")[0]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


def schema_paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Leaf paths of a schema's `properties` tree; `<id>` stands for additionalProperties maps."""
    props = node.get("properties")
    if props is None and isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"].get("properties"):
        return schema_paths(node["additionalProperties"], f"{prefix}<id>.")
    if not props:
        return [prefix.rstrip(".")]
    out: list[str] = []
    for k, v in props.items():
        out += schema_paths(v, f"{prefix}{k}.")
    return out


def values_paths(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        out: list[str] = []
        for k, v in node.items():
            out += values_paths(v, f"{prefix}{k}.")
        return out
    return [prefix.rstrip(".")]


# --- the checks -------------------------------------------------------------------------------


def main() -> int:
    helm.disable_logging()  # lint mode logs each template `fail` at INFO; the checks report
    print(f"helm-python-sdk {helm.__version__} (libhelm_c {helm.helm_c_version()}, Helm SDK {helm.helm_sdk_version()}), "
          f"kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else '?'}, "
          f"proxy {BIN}", flush=True)
    full_values = load_values("full.yaml")
    sidecar_values = deep_merge(load_values(str(SIDECAR / "values-clearml.yaml")), {
        "secret": {"clearmlApiKey": "TESTKEY" + secrets.token_hex(8).upper(), "clearmlApiSecret": random_secret(),
                   "clientSecrets": {"keycloak": random_secret()}},
    })
    sp_key, sp_cert = sp_key_pair()
    secrets_values = deep_merge(load_values("secrets.yaml"), {
        "config": {"providers": {"corp": {"sp_certificate": sp_cert}}},
        "secret": {
            "sessionSecret": random_secret(),
            "adminToken": random_secret(),
            "clearmlApiKey": "K" + secrets.token_hex(10).upper(),
            "clearmlApiSecret": random_secret(),
            "clientSecrets": {"keycloak": random_secret()},
            "spPrivateKeys": {"corp": sp_key},
            # ClearML's own variables work as well (a HOCON value: quoted, it may hold # and $).
            "env": {"CLEARML__secure__login__sso__oauth_client__okta__client_secret": '"s3cr#t$"'},
        },
    })
    rendered: dict[str, Manifests] = {}

    # Lint.
    for label, values in (("default values", {}), ("full standalone values", full_values), ("sidecar values", sidecar_values)):
        def lint_ok(values: dict[str, Any] = values) -> str:
            report = lint(values)
            problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
            expect(not problems, "; ".join(p["error"].strip() for p in problems))
            return f"{len(report['messages'])} info message(s)"
        check(f"helm lint --strict: {label}", lint_ok)

    # Standalone, default values.
    def standalone_default() -> str:
        m = rendered["default"] = render({})
        expect(m.kinds() == ["ConfigMap", "Deployment", "Secret", "Service", "ServiceAccount"], f"kinds {m.kinds()}")
        dep = m.one("Deployment")
        expect(dep["spec"].get("replicas") == 1, f"replicas {dep['spec'].get('replicas')}")
        expect("strategy" not in dep["spec"], "a strategy without persistence")
        env = secret_env(m)
        expect(list(env) == ["SSO_PROXY__SESSION__SECRET"], f"default Secret keys {list(env)}")
        expect(len(env["SSO_PROXY__SESSION__SECRET"].encode()) >= 32, "generated session secret shorter than 32 bytes")
        check_config_yaml(m)
        return check_pod(m)
    check("render standalone, default values: objects, probes, securityContext, Secret, volumes", standalone_default)

    # Standalone, the least config: the proxy's own defaults for everything else.
    def standalone_minimal() -> str:
        minimal = {"config": {"state": None, "log": None}}
        with helm.Chart.load(str(CHART)) as chart:
            notes = chart.render(minimal, name=RELEASE, namespace=NAMESPACE)[f"{RELEASE}/templates/NOTES.txt"]
        expect("sso-proxy.db" in notes, "NOTES.txt does not name the state database")
        m = render(minimal)
        config = yaml.safe_load(m.one("ConfigMap")["data"]["config.yaml"])
        expect(set(config) == {"listen", "upstream", "public_url"}, f"config.yaml keys {sorted(config)}")
        # state.path defaults to sso-proxy.db, relative: the working directory is the state volume.
        check_pod(m)
        proxy_accepts(m, secret_env(m))
        return "relative state.path lands on the state volume"
    check("render standalone with only listen, upstream and public_url", standalone_minimal)

    # Standalone, the full set.
    def standalone_full() -> str:
        m = rendered["full"] = render(full_values)
        expect(m.kinds() == sorted(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "PersistentVolumeClaim",
                                    "PodDisruptionBudget", "Service", "Service", "ServiceAccount", "ServiceMonitor"]), f"kinds {m.kinds()}")
        expect(not m.all("Secret"), "a Secret rendered although secret.existingSecret is set")
        check_config_yaml(m)
        detail = check_pod(m)
        dep = m.one("Deployment")
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        expect("replicas" not in dep["spec"], "replicas set although the HPA owns them")
        expect(dep["spec"].get("strategy", {}).get("type") == "Recreate", "no Recreate strategy with a PVC")
        hpa = m.one("HorizontalPodAutoscaler")["spec"]
        expect(hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}, f"HPA target {hpa['scaleTargetRef']}")
        expect((hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5) and len(hpa["metrics"]) == 2, f"HPA {hpa}")
        pdb = m.one("PodDisruptionBudget")["spec"]
        expect(pdb["selector"]["matchLabels"].items() <= pod_labels.items() and pdb.get("minAvailable") == 1 and "maxUnavailable" not in pdb, f"PDB {pdb}")
        ing = m.one("Ingress")["spec"]
        backend = ing["rules"][0]["http"]["paths"][0]["backend"]["service"]
        svc = m.one("Service", RELEASE)
        expect(backend == {"name": RELEASE, "port": {"number": svc["spec"]["ports"][0]["port"]}}, f"Ingress backend {backend}")
        expect(ing["ingressClassName"] == "nginx" and ing["tls"][0]["secretName"] == "clearml-tls", "Ingress class/TLS")
        expect(svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0].get("nodePort") == 30080, "Service type/nodePort")
        expect([p["name"] for p in svc["spec"]["ports"]] == ["http"], "the public Service exposes more than the main port")
        msvc = m.one("Service", f"{RELEASE}-metrics")
        expect(msvc["spec"]["type"] == "ClusterIP" and msvc["spec"]["ports"][0]["port"] == 9090, f"metrics Service {msvc['spec']}")
        expect(msvc["spec"]["selector"].items() <= pod_labels.items(), "metrics Service does not select the pods")
        sm = m.one("ServiceMonitor")
        expect(sm["spec"]["selector"]["matchLabels"].items() <= msvc["metadata"]["labels"].items(), "ServiceMonitor does not select the metrics Service")
        expect(not sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(), "ServiceMonitor also selects the public Service")
        expect(sm["spec"]["endpoints"][0]["port"] == "metrics" and sm["spec"]["endpoints"][0]["path"] == "/metrics", f"ServiceMonitor endpoint {sm['spec']['endpoints']}")
        expect(sm["metadata"]["labels"].get("release") == "prometheus", "ServiceMonitor labels")
        pvc = m.one("PersistentVolumeClaim")
        expect(pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["resources"]["requests"]["storage"] == "2Gi", f"PVC {pvc['spec']}")
        expect(pvc["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep", "PVC is deleted on uninstall")
        c = container_of(dep)
        expect(c["image"] == "registry.example.com/platform/sso-proxy:0.1.0-test" and c["imagePullPolicy"] == "Always", f"image {c['image']}")
        expect(m.one("ServiceAccount")["metadata"]["name"] == "sso-proxy-sa" == dep["spec"]["template"]["spec"]["serviceAccountName"], "ServiceAccount name")
        return detail
    check("render standalone, full values: Ingress, HPA, PDB, ServiceMonitor, PVC, existingSecret", standalone_full)

    # The chart's own Secret with every kind of secret.
    def standalone_secrets() -> str:
        m = rendered["secrets"] = render(secrets_values)
        env = secret_env(m)
        want = {
            "SSO_PROXY__SESSION__SECRET": secrets_values["secret"]["sessionSecret"],
            "SSO_PROXY__ADMIN__TOKEN": secrets_values["secret"]["adminToken"],
            "SSO_PROXY__CLEARML__API_KEY": secrets_values["secret"]["clearmlApiKey"],
            "SSO_PROXY__CLEARML__API_SECRET": secrets_values["secret"]["clearmlApiSecret"],
            "SSO_PROXY__PROVIDERS__KEYCLOAK__CLIENT_SECRET": secrets_values["secret"]["clientSecrets"]["keycloak"],
            "SSO_PROXY__PROVIDERS__CORP__SP_PRIVATE_KEY": sp_key,
            "CLEARML__secure__login__sso__oauth_client__okta__client_secret": '"s3cr#t$"',
        }
        expect(env == want, f"Secret keys {sorted(env)} != {sorted(want)} (or values differ)")
        text = m.one("ConfigMap")["data"]["config.yaml"]
        for v in want.values():
            expect(v.strip() not in text, "a secret value is in the ConfigMap")
        return f"{len(env)} variables"
    check("render standalone, chart-made Secret: every secret value becomes its variable", standalone_secrets)

    # Sidecar mode.
    def sidecar_objects() -> str:
        m = rendered["sidecar"] = render(sidecar_values, release="webserver-sso")
        expect(m.kinds() == ["ConfigMap", "Secret"], f"sidecar mode renders {m.kinds()}, want only ConfigMap and Secret")
        for d in m.docs:
            expect(d["metadata"]["name"] == "sso-proxy", f"{d['kind']} is named {d['metadata']['name']}, the patch expects sso-proxy")
        config = yaml.safe_load(m.one("ConfigMap")["data"]["config.yaml"])
        check_config_yaml(m)
        expect(config["upstream"] == "http://127.0.0.1:80", f"upstream {config['upstream']}")
        bridge = config["clearml"]
        expect(bridge["enabled"] is True and bridge["api_url"] == "http://clearml-apiserver:8008" and bridge["cookie_name"] == "clearml-token-k8s", f"clearml {bridge}")
        env = secret_env(m)
        expect({"SSO_PROXY__SESSION__SECRET", "SSO_PROXY__CLEARML__API_KEY", "SSO_PROXY__CLEARML__API_SECRET",
                "SSO_PROXY__PROVIDERS__KEYCLOAK__CLIENT_SECRET"} == set(env), f"sidecar Secret keys {sorted(env)}")
        return "ConfigMap + Secret sso-proxy"
    check("render sidecar (sidecar/values-clearml.yaml): only ConfigMap and Secret, ClearML bridge settings", sidecar_objects)

    def sidecar_patch() -> str:
        expect("sidecar" in rendered, "sidecar render failed")
        kust = load_yaml(SIDECAR / "kustomization.yaml")
        base = clearml_like_manifests()
        patched = []
        for doc in base:
            for p in kust["patches"]:
                t = p["target"]
                if t["kind"] == doc["kind"] and t["name"] == doc["metadata"]["name"]:
                    body = load_yaml(SIDECAR / p["path"])
                    doc = json6902(doc, body) if isinstance(body, list) else strategic_merge(doc, body)
            patched.append(doc)
        patched += [load_yaml(SIDECAR / r) for r in kust["resources"] if r != "all.yaml"]
        check_sidecar_wiring(patched, rendered["sidecar"])
        rendered["sidecar-patched"] = Manifests({}, {}, patched)
        return "webserver pod: clearml-webserver + sso-proxy, Service → sso"
    check("sidecar patch (webserver-sidecar.yaml, webserver-service.yaml) matches the chart's ConfigMap, Secret and ports", sidecar_patch)

    def sidecar_post_render() -> str:
        tool = shutil.which("kustomize") or shutil.which("kubectl")
        if not tool:
            raise Skip("neither kustomize nor kubectl is installed")
        expect("sidecar" in rendered, "sidecar render failed")
        stream = yaml.safe_dump_all(clearml_like_manifests(), sort_keys=False)
        result = subprocess.run([str(SIDECAR / "post-render.sh")], input=stream, capture_output=True, text=True, timeout=120, check=False)
        expect(result.returncode == 0, f"post-render.sh exited {result.returncode}: {result.stderr.strip()[-500:]}")
        out = [d for d in yaml.safe_load_all(result.stdout) if d]
        expect(sorted(d["kind"] for d in out) == ["Deployment", "PersistentVolumeClaim", "Service"], f"post-render.sh output kinds {[d['kind'] for d in out]}")
        check_sidecar_wiring(out, rendered["sidecar"])
        rendered["sidecar-post-rendered"] = Manifests({}, {}, out)
        return f"with {Path(tool).name}"
    check("sidecar post-render.sh (real kustomize) on ClearML-like manifests", sidecar_post_render)

    # Kubernetes schemas.
    def kube_schemas() -> str:
        # The validator must catch a broken object, or this check proves nothing.
        broken = copy.deepcopy(rendered["default"].one("Deployment"))
        broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "4180"
        broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
        try:
            kube_validate([broken])
            raise CheckFailed("kubernetes-validate accepted a broken Deployment")
        except CheckFailed as e:
            expect("is invalid" in str(e), str(e))
        total, skipped = 0, set()
        for key in ("default", "full", "secrets", "sidecar", "sidecar-patched", "sidecar-post-rendered"):
            if key in rendered:
                n, s = kube_validate(rendered[key].docs)
                total += n
                skipped.update(s)
        expect(total >= 30, f"only {total} validations ran")
        return f"{total} object/version validations against {', '.join(KUBE_VERSIONS)}; no schema for {', '.join(sorted(skipped)) or '-'} (CRD, checked above)"
    check("rendered objects valid against the Kubernetes OpenAPI schemas (strict)", kube_schemas)

    # The real proxy.
    def proxy_default() -> str:
        m = rendered["default"]
        eff = proxy_accepts(m, pod_env(m, container_of(m.one("Deployment")), {}))
        expect(eff["upstream"] == "http://app:8080/" and eff["state"]["path"] == "/var/lib/sso-proxy/sso-proxy.db", f"effective config {eff['upstream']} {eff['state']}")
        return "exit 0"
    check("sso-proxy --check-config accepts the default render (ConfigMap + Secret)", proxy_default)

    def proxy_full() -> str:
        m = rendered["full"]
        dummies = {  # what the existing Secret must hold for this config (README: "Secrets")
            "SSO_PROXY__SESSION__SECRET": random_secret(),
            "SSO_PROXY__CLEARML__API_KEY": "K" + secrets.token_hex(10).upper(),
            "SSO_PROXY__CLEARML__API_SECRET": random_secret(),
            "SSO_PROXY__PROVIDERS__KEYCLOAK__CLIENT_SECRET": random_secret(),
        }
        eff = proxy_accepts(m, pod_env(m, container_of(m.one("Deployment")), dummies))
        expect(eff["session"]["idle_timeout"] == "45m", "extraEnv SSO_PROXY__SESSION__IDLE_TIMEOUT did not apply")
        expect(eff["clearml"]["api_key"] == "<redacted>" and eff["providers"]["keycloak"]["client_secret"] == "<redacted>", "secrets did not reach the proxy")
        expect(eff["metrics"]["listen"] == "0.0.0.0:9090" and eff["listen"] == "0.0.0.0:8443", "listeners")
        return "exit 0"
    check("sso-proxy --check-config accepts the full render (existingSecret variables, extraEnv)", proxy_full)

    def proxy_secrets() -> str:
        m = rendered["secrets"]
        eff = proxy_accepts(m, pod_env(m, container_of(m.one("Deployment")), {}))
        got = {
            "admin.token": eff["admin"]["token"],
            "clearml.api_key": eff["clearml"]["api_key"],
            "clearml.api_secret": eff["clearml"]["api_secret"],
            "providers.keycloak.client_secret": eff["providers"]["keycloak"]["client_secret"],
            "providers.okta.client_secret": eff["providers"]["okta"]["client_secret"],
            "providers.corp.sp_private_key": eff["providers"]["corp"]["sp_private_key"],
        }
        missing = [k for k, v in got.items() if v != "<redacted>"]
        expect(not missing, f"not set in the proxy: {missing}")
        return f"{len(got) + 1} secrets reached the proxy"
    check("sso-proxy --check-config: every chart secret reaches its key (SSO_PROXY__... and CLEARML__secure__...)", proxy_secrets)

    def proxy_sidecar() -> str:
        m = rendered["sidecar"]
        env = secret_env(m)
        eff = proxy_accepts(m, env)
        expect(eff["clearml"]["enabled"] is True and eff["clearml"]["api_secret"] == "<redacted>", "bridge not configured")
        return "exit 0"
    check("sso-proxy --check-config accepts the sidecar render", proxy_sidecar)

    def proxy_serves_probes() -> str:
        # The default render has no connection and no bridge, so the proxy contacts nothing: it is
        # started on loopback, asked for the probes' paths and /metrics, and stopped.
        m = rendered["default"]
        c = container_of(m.one("Deployment"))
        paths = [c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"]]
        port, metrics_port = free_port(), free_port()
        with tempfile.TemporaryDirectory(prefix="sso-proxy-chart-") as tmp:
            config = Path(tmp) / "config.yaml"
            config.write_text(m.one("ConfigMap")["data"]["config.yaml"], encoding="utf-8")
            (Path(tmp) / "state").mkdir()
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                   **pod_env(m, c, {}),
                   # The pod's volume at persistence.mountPath, and a metrics listener.
                   "SSO_PROXY__STATE__PATH": f"{tmp}/state/sso-proxy.db",
                   "SSO_PROXY__METRICS__LISTEN": f"127.0.0.1:{metrics_port}"}
            expect(BIN.is_file(), f"{BIN} does not exist")
            with open(Path(tmp) / "proxy.log", "w+", encoding="utf-8") as log:
                # The upstream is resolved at start-up (never contacted here): a loopback one.
                proc = subprocess.Popen([str(BIN), "--config", str(config), "--listen", f"127.0.0.1:{port}",
                                         "--upstream", f"http://127.0.0.1:{free_port()}"],
                                        env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
                try:
                    base = f"http://127.0.0.1:{port}"
                    deadline = time.monotonic() + 30
                    while True:
                        if proc.poll() is not None:
                            log.seek(0)
                            raise CheckFailed(f"the proxy exited with {proc.returncode}: {log.read()[-800:]}")
                        try:
                            if http_get(base + paths[0])[0] == 200:
                                break
                        except OSError:
                            pass
                        expect(time.monotonic() < deadline, "the proxy did not answer within 30 s")
                        time.sleep(0.2)
                    for path in paths:
                        status, body = http_get(base + path)
                        expect(status == 200, f"GET {path} answered {status}: {body[:200]}")
                    status, _ = http_get(base + "/_sso/no-such-probe")
                    expect(status == 404, f"GET /_sso/no-such-probe answered {status}: the probe check proves nothing")
                    status, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
                    expect(status == 200 and "# TYPE" in body, f"GET /metrics answered {status}")
                    expect((Path(tmp) / "state" / "sso-proxy.db").exists(), "no state database at state.path")
                finally:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        return f"{paths[0]} and {paths[1]} 200, /metrics 200"
    check("the proxy started from the default render answers the probes' paths (loopback)", proxy_serves_probes)

    def proxy_rejects() -> str:
        # Values that Helm and the schema accept, but the proxy refuses: the binary is the judge.
        m = render({"config": {"session": {"idle_timeout": "soon"}, "trusted_proxies": ["10.0.0.0/33"]}})
        env = secret_env(m)
        with tempfile.TemporaryDirectory(prefix="sso-proxy-chart-") as tmp:
            bad = run_check_config(m.one("ConfigMap")["data"]["config.yaml"], env, Path(tmp))
            expect(bad.returncode == EXIT_CONFIG, f"exit {bad.returncode} for a broken config, want {EXIT_CONFIG}")
            for key in ("session.idle_timeout", "trusted_proxies"):
                expect(key in bad.stderr, f"the error does not name {key}: {bad.stderr.strip()}")
            # The default render without its Secret: no session secret.
            nosecret = run_check_config(rendered["default"].one("ConfigMap")["data"]["config.yaml"], {}, Path(tmp))
            expect(nosecret.returncode == EXIT_CONFIG, f"exit {nosecret.returncode} without the Secret, want {EXIT_CONFIG}")
            expect("session.secret" in nosecret.stderr, f"the error does not name session.secret: {nosecret.stderr.strip()}")
        return f"exit {EXIT_CONFIG} twice"
    check("sso-proxy --check-config rejects a broken render (exit 64)", proxy_rejects)

    # Bad values must be refused by values.schema.json (render and lint) ...
    schema_rejects = [
        ("mode: bogus", {"mode": "bogus"}, "/mode"),
        ("replicaCount: 0", {"replicaCount": 0}, "/replicaCount"),
        ("replicaCount: \"2\" (a string)", {"replicaCount": "2"}, "/replicaCount"),
        ("service.port: \"80\" (a string)", {"service": {"port": "80"}}, "/service/port"),
        ("service.port: 70000", {"service": {"port": 70000}}, "/service/port"),
        ("an unknown value (replicas)", {"replicas": 2}, "replicas"),
        ("an unknown config key (upstrem)", {"config": {"upstrem": "http://app"}}, "upstrem"),
        ("an unknown provider key", {"config": {"providers": {"kc": {"client_id": "a", "clientId": "b"}}}}, "clientId"),
        ("config.log.level: loud", {"config": {"log": {"level": "loud"}}}, "/config/log/level"),
        ("config.listen without a port", {"config": {"listen": "0.0.0.0"}}, "/config/listen"),
        ("config.upstream without a scheme", {"config": {"upstream": "app:8080"}}, "/config/upstream"),
        ("secret.sessionSecret shorter than 32 bytes", {"secret": {"sessionSecret": "too-short"}}, "/secret/sessionSecret"),
        ("image.pullPolicy: Sometimes", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ("ingress pathType: Bogus", {"ingress": {"enabled": True, "hosts": [{"host": "a.example.com", "paths": [{"path": "/", "pathType": "Bogus"}]}]}}, "pathType"),
        ("persistence.size: lots", {"persistence": {"size": "lots"}}, "/persistence/size"),
        ("autoscaling.maxReplicas: 0", {"autoscaling": {"maxReplicas": 0}}, "/autoscaling/maxReplicas"),
    ]
    for label, values, where in schema_rejects:
        def rejected(values: dict[str, Any] = values, where: str = where) -> str:
            try:
                render(values)
                raise CheckFailed("render accepted it")
            except helm.HelmValuesError as e:
                expect(where in str(e), f"rejected, but not for {where}: {str(e).strip()}")
            report = lint(values)
            expect(report["errors"], "helm lint accepted it")
            return "render and lint fail"
        check(f"values.schema.json rejects {label}", rejected)

    # ... and what the schema cannot express, by the chart's own guards.
    guarded = [
        ("config.session.secret in the ConfigMap", {"config": {"session": {"secret": "x" * 40}}}, "config.session.secret is a secret"),
        ("a client_secret in the ConfigMap", {"config": {"providers": {"kc": {"client_id": "a", "client_secret": "b"}}}}, "secret.clientSecrets.kc"),
        ("replicaCount: 2 with the memory session store", {"replicaCount": 2}, "config.session.store: cookie"),
        ("autoscaling with the memory session store", {"autoscaling": {"enabled": True}}, "config.session.store: cookie"),
        ("two replicas on a ReadWriteOnce volume", {"replicaCount": 2, "config": {"session": {"store": "cookie"}}, "persistence": {"enabled": True}}, "ReadWriteOnce"),
        ("state.path outside persistence.mountPath", {"config": {"state": {"path": "/data/sso.db"}}}, "persistence.mountPath"),
        ("ServiceMonitor without config.metrics.listen", {"metrics": {"serviceMonitor": {"enabled": True}}}, "config.metrics.listen"),
        ("the ClearML bridge without its credential", {"config": {"clearml": {"enabled": True, "api_url": "http://clearml-apiserver:8008"}}}, "secret.clearmlApiKey"),
        ("PDB with minAvailable and maxUnavailable", {"podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}}, "not both"),
        ("a client secret for a bad connection id", {"secret": {"clientSecrets": {"Bad.Id": "x"}}}, "Bad.Id"),
    ]
    for label, values, message in guarded:
        def refused(values: dict[str, Any] = values, message: str = message) -> str:
            try:
                render(values)
                raise CheckFailed("render accepted it")
            except helm.HelmError as e:
                expect(message in str(e), f"refused, but without {message!r}: {str(e).strip()}")
            # `helm lint` only logs a template's `fail` (Helm's lint mode), so render is the test.
            return "render fails"
        check(f"chart refuses {label}", refused)

    # Documentation and schema coverage.
    schema = helm.Chart.load(str(CHART)).schema or {}

    def schema_covers_readme() -> str:
        readme = {k.replace("providers.<id>.", "providers.<id>.") for k in readme_config_keys()}
        expect(len(readme) > 50, f"only {len(readme)} keys found in README's reference table")
        in_schema = {p.removeprefix("config.") for p in schema_paths(schema["properties"]["config"], "config.")}
        missing, extra = sorted(readme - in_schema), sorted(in_schema - readme)
        expect(not missing, f"README reference keys missing from values.schema.json (config): {missing}")
        expect(not extra, f"values.schema.json config keys not in README's reference table: {extra}")
        return f"{len(readme)} keys"
    check("values.schema.json config = README configuration reference", schema_covers_readme)

    def schema_covers_values() -> str:
        defaults = helm.Chart.load(str(CHART)).values
        leaves = [p for p in values_paths(defaults) if not p.startswith("config.")]
        known = set(schema_paths(schema))

        def in_schema(path: str) -> bool:
            return any(path == k or path.startswith(k + ".") or k.startswith(path + ".") for k in known)
        missing = [p for p in leaves if not in_schema(p)]
        expect(not missing, f"values.yaml keys missing from values.schema.json: {missing}")
        doc = (CHART / "README.md").read_text(encoding="utf-8")
        expect("\n## Values\n" in doc, "the chart README has no '## Values' section")
        table = doc.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.M))
        undocumented = [p for p in leaves if not any(p == d or p.startswith(d + ".") for d in documented)]
        expect(not undocumented, f"values.yaml keys missing from the chart README's table: {undocumented}")
        stale = [d for d in documented if not d.startswith("config") and not in_schema(d)]
        expect(not stale, f"chart README documents values that do not exist: {stale}")
        return f"{len(leaves)} values"
    check("every value is in values.schema.json and in the chart README", schema_covers_values)

    failed = [n for s, n in RESULTS if s == "FAIL"]
    passed = sum(1 for s, _ in RESULTS if s == "PASS")
    skipped = sum(1 for s, _ in RESULTS if s == "SKIP")
    print()
    if failed:
        print(f"helm chart: {len(failed)} of {len(RESULTS)} checks FAILED ({passed} passed, {skipped} skipped):")
        for n in failed:
            print(f"  - {n}")
        return 1
    print(f"helm chart: all {passed} checks passed ({skipped} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
