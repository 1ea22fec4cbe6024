"""Consistency checks of deploy/ that no schema catches, run by deploy/check.sh.

Schemas say a manifest is well-formed; these say the pieces agree with each other and
with giftrank's contract (DESIGN.md sections 2-6 and 9): the kustomization lists exactly
the manifests present, the termination grace period covers preStop plus the drain
deadline, the admin port is never exposed, the config is valid TOML naming a mounted
repository, every metric named in the rules and the dashboard is one giftrank exports,
the example rollout policy (serving.toml.example) is one the service accepts, and the
Docker build context (.dockerignore) holds every file the crate's build reads.

Usage: python3 deploy/check_deploy.py PROMQL_OUT
Run from the repository root. Writes the dashboard's queries, as recording rules, to
PROMQL_OUT so that check.sh can have promtool parse them. Exit 1 on any finding.
"""

import ipaddress
import os
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

K8S = Path("deploy/k8s")
RULES = Path("deploy/prometheus/rules.yml")
DASHBOARD = Path("deploy/grafana/giftrank.json")
POLICY_EXAMPLE = Path("deploy/serving.toml.example")
DOCKERFILE = Path("Dockerfile")
ADMIN_PORT = 8081

# DESIGN.md section 5, without the giftrank_ prefix.
COUNTERS = {
    "http_requests_total",
    "model_reloads_total",
    "rejected_requests_total",
    "rank_requests_total",
    "degraded_requests_total",
    "canary_requests_total",
    "shadow_requests_total",
    "policy_reloads_total",
}
GAUGES = {"recall_size", "model_info", "inflight_requests", "serving_policy_info"}
HISTOGRAMS = {
    "request_duration_seconds",
    "rank_stage_duration_seconds",
    "rank_candidates",
    "rank_recall_size",
    "shadow_top_overlap",
    "shadow_rank_correlation",
}
KNOWN_METRICS = (
    {f"giftrank_{n}" for n in COUNTERS | GAUGES}
    | {f"giftrank_{n}{s}" for n in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
)
# Series from elsewhere that the rules may use.
EXTERNAL_METRICS = {"kube_deployment_status_replicas_available", "ALERTS"}

findings: list[str] = []


def fail(message: str) -> None:
    findings.append(message)


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def check_kustomization() -> dict[str, list[dict]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization.get("resources", [])
    present = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    for name in listed:
        if not (K8S / name).is_file():
            fail(f"kustomization.yaml lists {name}, which does not exist")
    for name in present:
        if name not in listed:
            fail(f"deploy/k8s/{name} is not listed in kustomization.yaml resources")
    objects: dict[str, list[dict]] = {}
    for name in listed:
        if (K8S / name).is_file():
            for doc in load_docs(K8S / name):
                objects.setdefault(doc["kind"], []).append(doc)
    return objects


def check_workload(objects: dict[str, list[dict]]) -> None:
    (deployment,) = objects["Deployment"]
    (configmap,) = objects["ConfigMap"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    config = tomllib.loads(configmap["data"]["giftrank.toml"])  # raises on bad TOML
    if config.get("log_format") != "json":
        fail("config: log_format should be json in Kubernetes")

    # The grace period must cover the preStop sleep and the whole drain.
    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    drain = config.get("drain_timeout_secs", 20)
    if grace <= pre_stop + drain:
        fail(f"terminationGracePeriodSeconds {grace} <= preStop {pre_stop} s + drain_timeout_secs {drain}")

    # Every GIFTRANK_* variable is a config key; service links would add unknown ones.
    if pod.get("enableServiceLinks", True):
        fail("Deployment: enableServiceLinks must be false (GIFTRANK_* service-link variables break the config)")

    # Admin: loopback, or a token is provided.
    admin = config.get("admin_listen", "127.0.0.1:8081")
    admin_host = admin.rsplit(":", 1)[0].strip("[]")
    env_names = {e["name"] for e in container.get("env", [])}
    if not ipaddress.ip_address(admin_host).is_loopback and "GIFTRANK_ADMIN_TOKEN" not in env_names:
        fail(f"config: admin_listen {admin} is not loopback and GIFTRANK_ADMIN_TOKEN is not set")

    # Ports: the container declares http and grpc; no admin port anywhere public.
    container_ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if container_ports.get("http") != int(config.get("listen", "0.0.0.0:8080").rsplit(":", 1)[1]):
        fail("container port http does not match config listen")
    if container_ports.get("grpc") != int(config.get("grpc_listen", "0.0.0.0:9090").rsplit(":", 1)[1]):
        fail("container port grpc does not match config grpc_listen")
    if ADMIN_PORT in container_ports.values():
        fail(f"container declares the admin port {ADMIN_PORT}")
    for service in objects["Service"]:
        for port in service["spec"]["ports"]:
            if port["port"] == ADMIN_PORT or port.get("targetPort") in (ADMIN_PORT, "admin"):
                fail(f"Service {service['metadata']['name']} exposes the admin port")
            target = port.get("targetPort", port["port"])
            if isinstance(target, str) and target not in container_ports:
                fail(f"Service {service['metadata']['name']} targets unknown container port {target}")

    # Probes on the contract's routes.
    if container["livenessProbe"]["httpGet"]["path"] != "/healthz":
        fail("liveness probe must use /healthz")
    if container["readinessProbe"]["httpGet"]["path"] != "/readyz":
        fail("readiness probe must use /readyz")

    # Security.
    sc = container.get("securityContext", {})
    if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation", True):
        fail("container must have readOnlyRootFilesystem and no privilege escalation")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        fail("container must drop ALL capabilities")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        fail("pod must run as non-root")

    # The model repository lives on the shared claim, mounted read-only.
    (pvc,) = objects["PersistentVolumeClaim"]
    if pvc["spec"]["accessModes"] != ["ReadOnlyMany"]:
        fail("model claim must be ReadOnlyMany")
    volumes = {v["name"]: v for v in pod["volumes"]}
    repo = Path(config["model_repo"])
    mounts = [m for m in container["volumeMounts"] if repo.is_relative_to(m["mountPath"])]
    if not mounts:
        fail(f"config model_repo {repo} is on no mounted volume")
    else:
        mount = max(mounts, key=lambda m: len(m["mountPath"]))
        claim = volumes[mount["name"]].get("persistentVolumeClaim", {})
        if claim.get("claimName") != pvc["metadata"]["name"] or not mount.get("readOnly"):
            fail(f"model_repo {repo} must be on the claim {pvc['metadata']['name']}, mounted read-only")

    # The autoscaler and the budget point at this Deployment's pods.
    (hpa,) = objects["HorizontalPodAutoscaler"]
    if hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
        fail("HPA does not target the Deployment")
    if "replicas" in deployment["spec"]:
        fail("Deployment sets spec.replicas, which every apply would force over the HPA's choice")
    selector = deployment["spec"]["selector"]["matchLabels"]
    for kind in ("PodDisruptionBudget",):
        for obj in objects.get(kind, []):
            if obj["spec"]["selector"]["matchLabels"] != selector:
                fail(f"{kind} selector differs from the Deployment's")
    for service in objects["Service"]:
        if service["spec"]["selector"] != selector:
            fail(f"Service {service['metadata']['name']} selector differs from the Deployment's")


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # drop matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # drop ranges
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {w for w in words if w.startswith(("giftrank_", "kube_", "ALERTS")) or ":" in w}


def check_rules() -> None:
    rules = yaml.safe_load(RULES.read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            for metric in metric_names(rule["expr"]):
                if metric not in KNOWN_METRICS | EXTERNAL_METRICS | recorded:
                    fail(f"rules.yml {name}: unknown metric {metric}")
            if "alert" in rule:
                if "for" not in rule:
                    fail(f"rules.yml {name}: no 'for'")
                if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
                    fail(f"rules.yml {name}: severity must be warning or critical")
                if not {"summary", "description"} <= set(rule.get("annotations", {})):
                    fail(f"rules.yml {name}: needs summary and description annotations")


def check_dashboard(promql_out: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    if not 36 <= dashboard.get("schemaVersion", 0) <= 41:
        fail(f"dashboard schemaVersion {dashboard.get('schemaVersion')} is not ~39")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    if variables.get("datasource", {}).get("query") != "prometheus":
        fail("dashboard has no Prometheus datasource variable")
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        fail("dashboard panel ids are not unique")
    exprs = [(a["name"], a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        if grid["x"] + grid["w"] > 24:
            fail(f"panel {panel['title']!r} is wider than the grid")
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"panel {panel['title']!r} does not use the $datasource variable")
        for target in panel["targets"]:
            exprs.append((panel["title"], target["expr"]))
    for query in ("namespace", "pod"):
        exprs.append((f"variable {query}", re.sub(r"^label_values\((.*), \w+\)$", r"\1", variables[query]["definition"])))
    rules = []
    for i, (title, expr) in enumerate(exprs):
        for metric in metric_names(expr):
            if metric not in KNOWN_METRICS:
                fail(f"dashboard {title!r}: unknown metric {metric}")
        concrete = expr.replace("$__rate_interval", "5m").replace("$namespace", ".*").replace("$pod", ".*")
        if "$" in concrete:
            fail(f"dashboard {title!r}: unknown variable in {expr}")
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    promql_out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))


def check_policy_example() -> None:
    """serving.toml.example must be a policy the service accepts (DESIGN.md section 9):
    only the keys pin, [canary] version + percent, [shadow] version + sample; percent in
    0-100, sample in 0-1; versions written as canonical decimal numbers."""
    try:
        policy = tomllib.loads(POLICY_EXAMPLE.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        fail(f"{POLICY_EXAMPLE}: {e}")
        return

    def version(key: str, value: object) -> None:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not text.isdigit() or str(int(text)) != text:
            fail(f"{POLICY_EXAMPLE}: {key} = {value!r} is not a version")

    def share(key: str, value: object, top: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            fail(f"{POLICY_EXAMPLE}: {key} = {value!r} is outside 0 to {top:g}")

    for key in set(policy) - {"pin", "canary", "shadow"}:
        fail(f"{POLICY_EXAMPLE}: unknown key {key}")
    if "pin" in policy:
        version("pin", policy["pin"])
    for table, amount, top in (("canary", "percent", 100), ("shadow", "sample", 1)):
        if table not in policy:
            continue
        section = policy[table]
        if not isinstance(section, dict) or set(section) != {"version", amount}:
            fail(f"{POLICY_EXAMPLE}: [{table}] must hold exactly version and {amount}")
            continue
        version(f"{table}.version", section["version"])
        share(f"{table}.{amount}", section[amount], top)


def check_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    exposed = {int(p) for line in re.findall(r"^EXPOSE\s+(.+)$", text, re.M) for p in re.findall(r"\d+", line)}
    if ADMIN_PORT in exposed:
        fail(f"Dockerfile exposes the admin port {ADMIN_PORT}")
    if not {8080, 9090} <= exposed:
        fail("Dockerfile must expose 8080 and 9090")
    copies = re.findall(r"^COPY\s+models/\s+(\S+)$", text, re.M)
    cmd = re.search(r'^CMD\s+(\[.*\])$', text, re.M)
    if not copies or not cmd:
        fail("Dockerfile must COPY models/ and have a CMD")
    else:
        args = json.loads(cmd.group(1))
        repo = args[args.index("--model-repo") + 1] if "--model-repo" in args else ""
        if args[0] != "serve" or not repo.startswith(copies[0]):
            fail(f"Dockerfile CMD {args} does not serve the copied models ({copies[0]})")
    if not re.search(r"^USER\s+(?!root|0\b)", text, re.M):
        fail("Dockerfile must switch to a non-root USER")


def check_docker_context() -> None:
    """The image build sees only what .dockerignore lets back in (`*`, then `!path`).
    Every file the crate's build reads must be among them: include_bytes!/include_str!
    targets, and the files of targets declared in Cargo.toml."""
    lines = [l.strip() for l in Path(".dockerignore").read_text().splitlines()]
    patterns = [l for l in lines if l and not l.startswith("#")]
    if patterns[:1] != ["*"]:
        fail(".dockerignore must start with '*' (an allowlist)")
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}

    def in_context(path: Path) -> bool:
        return any(path == Path(a) or path.is_relative_to(a) for a in allowed)

    for needed in ("Cargo.toml", "Cargo.lock", "src", "models"):
        if not in_context(Path(needed)):
            fail(f".dockerignore leaves out {needed}")
    for source in Path("src").rglob("*.rs"):
        for target in re.findall(r'include_(?:bytes|str)!\(\s*"([^"]+)"', source.read_text()):
            path = Path(os.path.normpath(source.parent / target))
            if not in_context(path):
                fail(f"{source} embeds {path}, which .dockerignore leaves out of the image build")
    manifest = tomllib.loads(Path("Cargo.toml").read_text())
    if "build" in manifest.get("package", {}) or Path("build.rs").exists():
        if not in_context(Path(manifest.get("package", {}).get("build", "build.rs"))):
            fail(".dockerignore leaves out the build script")
    for kind, folder in (("bin", "src/bin"), ("bench", "benches"), ("test", "tests"), ("example", "examples")):
        for target in manifest.get(kind, []):
            path = Path(target.get("path", f"{folder}/{target['name']}.rs"))
            if not in_context(path):
                fail(f"Cargo.toml declares [[{kind}]] {target['name']} at {path}, which .dockerignore leaves out")


def main() -> int:
    promql_out = Path(sys.argv[1])
    objects = check_kustomization()
    check_workload(objects)
    check_rules()
    check_dashboard(promql_out)
    check_policy_example()
    check_dockerfile()
    check_docker_context()
    for finding in findings:
        print(f"  FAIL {finding}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
