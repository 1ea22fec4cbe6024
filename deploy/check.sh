#!/usr/bin/env bash
# deploy/check.sh: offline checks of the deployment files (called by .ci/run).
#   - Kubernetes manifests against the API schemas (kubernetes-validate --strict), at the
#     oldest and newest Kubernetes versions we support; the kustomization rendered and
#     validated when kubectl is installed
#   - consistency of manifests, config, rules, dashboard, example policy and Dockerfile
#     (check_deploy.py)
#   - Prometheus rules: promtool check rules + the unit tests in rules_test.yml; the
#     dashboard's queries parsed by promtool too
#   - Dockerfile: hadolint; shell scripts: shellcheck; dashboard JSON parses
#   - the live /openapi.json of the release binary: openapi-spec-validator (OpenAPI 3.1)
# Tools go into target/deploy-tools/ (git-ignored): a venv from deploy/requirements-check.txt
# (PyPI) and promtool unpacked from Debian's `prometheus` package (apt-get download, no
# install, no service started). A second run reuses them. Exit status 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# The sleep preStop action needs 1.30; 1.37 is the newest schema kubernetes-validate bundles.
KUBE_VERSIONS=(1.30.0 1.37.0)
TOOLS=target/deploy-tools
VENV=$TOOLS/venv
REQUIREMENTS=deploy/requirements-check.txt
start=$SECONDS
passed=0
failures=()

say() { printf '%s\n' "$*"; }

# run NAME COMMAND...: runs one check, prints its output indented and its verdict.
run() {
    local name=$1 t0=$SECONDS output status=0
    shift
    output=$("$@" 2>&1) || status=$?
    if [[ -n $output ]]; then
        printf '%s\n' "$output" | sed 's/^/    /'
    fi
    if [[ $status -eq 0 ]]; then
        say "  ok    $name ($((SECONDS - t0)) s)"
        passed=$((passed + 1))
    else
        say "  FAIL  $name (exit $status)"
        failures+=("$name")
    fi
}

# --- tools ---------------------------------------------------------------------------
say "== tools (in $TOOLS)"
mkdir -p "$TOOLS"

stamp=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [[ -x $VENV/bin/python && -f $VENV/.installed && $(cat "$VENV/.installed") == "$stamp" ]]; then
    say "  venv up to date ($REQUIREMENTS)"
else
    t0=$SECONDS
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"
    printf '%s\n' "$stamp" >"$VENV/.installed"
    say "  venv installed from $REQUIREMENTS ($((SECONDS - t0)) s)"
fi

if command -v promtool >/dev/null; then
    PROMTOOL=$(command -v promtool)
    say "  promtool from PATH"
else
    PROMTOOL=$TOOLS/prometheus/usr/bin/promtool
    if [[ -x $PROMTOOL ]]; then
        say "  promtool already unpacked"
    else
        t0=$SECONDS
        if ! apt-cache show prometheus >/dev/null 2>&1; then
            if [[ $(id -u) -ne 0 ]]; then
                say "promtool missing and the apt package lists are empty: run 'apt-get update' as root" >&2
                exit 1
            fi
            apt-get update -qq
        fi
        rm -rf "$TOOLS/debs" "$TOOLS/prometheus"
        mkdir -p "$TOOLS/debs"
        (cd "$TOOLS/debs" && apt-get download -qq -o APT::Sandbox::User=root prometheus)
        dpkg-deb -x "$TOOLS"/debs/prometheus_*.deb "$TOOLS/prometheus"
        rm -rf "$TOOLS/debs"
        say "  promtool unpacked from Debian's prometheus package ($((SECONDS - t0)) s)"
    fi
fi
say "  $("$VENV/bin/kubernetes-validate" --version 2>&1 | head -1 | sed 's/^/kubernetes-validate /'); $("$VENV/bin/hadolint" --version); $("$PROMTOOL" --version 2>&1 | head -1); shellcheck $("$VENV/bin/shellcheck" --version | sed -n 's/^version: //p')"

# --- checks --------------------------------------------------------------------------
say "== checks"
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
for version in "${KUBE_VERSIONS[@]}"; do
    run "kubernetes-validate --strict (Kubernetes $version): ${manifests[*]}" \
        "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
done

if command -v kubectl >/dev/null; then
    render() {
        kubectl kustomize deploy/k8s >"$TOOLS/rendered.yaml" &&
            for version in "${KUBE_VERSIONS[@]}"; do
                "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$TOOLS/rendered.yaml" || return 1
            done
    }
    run "kubectl kustomize deploy/k8s, rendered output validated" render
else
    say "  skip  kubectl kustomize (kubectl not installed); kustomization.yaml resources checked below"
fi

run "consistency (kustomization, grace period, admin port, config, metric names, serving.toml.example, Dockerfile, build context)" \
    "$VENV/bin/python" deploy/check_deploy.py "$TOOLS/dashboard-queries.yml"
run "promtool check rules deploy/prometheus/rules.yml" "$PROMTOOL" check rules deploy/prometheus/rules.yml
PROMTOOL=$(realpath "$PROMTOOL")
rule_tests() { (cd deploy/prometheus && "$PROMTOOL" test rules rules_test.yml); }
run "promtool test rules deploy/prometheus/rules_test.yml" rule_tests
run "dashboard queries parse (promtool)" "$PROMTOOL" check rules "$TOOLS/dashboard-queries.yml"
# The service's own /metrics, after one ranked request, must lint clean; its
# /openapi.json is kept for the validator below.
live_metrics() {
    # The same build `cargo test --release` makes (a no-op after it), binary included.
    cargo test --release --no-run --quiet 2>/dev/null || return 1
    local port=18980 log="$TOOLS/metrics-server.log"
    target/release/giftrank serve --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
        --grpc-listen "127.0.0.1:$((port + 2))" --model-repo models/gift >"$log" 2>&1 &
    local server=$! ok=0
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
        sleep 0.1
    done
    curl -sf -X POST -H 'Content-Type: application/json' --data-binary @examples/rank_request.json \
        "http://127.0.0.1:$port/rank" >/dev/null &&
        curl -sf "http://127.0.0.1:$port/metrics" >"$TOOLS/metrics.txt" &&
        curl -sf "http://127.0.0.1:$port/openapi.json" >"$TOOLS/openapi.json" || ok=1
    kill -TERM "$server" && wait "$server" || ok=1
    [[ $ok -eq 0 ]] || return 1
    local lint
    lint=$("$PROMTOOL" check metrics <"$TOOLS/metrics.txt" 2>&1) || { echo "$lint"; return 1; }
    [[ -z "$lint" ]] || { echo "$lint"; return 1; }
}
run "promtool check metrics on a live /metrics (no warnings)" live_metrics
run "openapi-spec-validator on the live /openapi.json" \
    "$VENV/bin/openapi-spec-validator" "$TOOLS/openapi.json"
run "dashboard JSON parses: deploy/grafana/giftrank.json" \
    python3 -m json.tool deploy/grafana/giftrank.json /dev/null
run "hadolint Dockerfile" "$VENV/bin/hadolint" --no-color --config .hadolint.yaml Dockerfile
run "shellcheck deploy/*.sh" "$VENV/bin/shellcheck" deploy/check.sh deploy/giftrank-admin.sh

say "== deploy checks took $((SECONDS - start)) s"
for failure in "${failures[@]}"; do
    say "  failed: $failure"
done
say "deploy: $passed passed, ${#failures[@]} failed"
[[ ${#failures[@]} -eq 0 ]]
