#!/usr/bin/env bash
# giftrank-admin.sh: run one admin action on EVERY giftrank pod of a namespace.
# Pins, unpins and reloads are per pod (each has its own admin listener on 127.0.0.1:8081;
# the fleet-wide pin is serving.toml's, deploy/README.md), so they must reach every pod;
# this does it through `kubectl port-forward`, one pod at a time, and says what each said.
#
# Usage: deploy/giftrank-admin.sh [-n NAMESPACE] status | reload | unpin | pin VERSION
#   status   serving version, pin, rollout policy and version states (GET /v1/models)
#   reload   rescan the model repository now (POST /admin/reload)
#   pin N    serve only version N, overriding serving.toml (POST /admin/pin/N)
#   unpin    back to serving.toml, else the highest valid version (POST /admin/unpin)
# Needs kubectl (with pods/portforward rights) and curl. Exit status 1 if any pod failed.
# Environment: GIFTRANK_ADMIN_TOKEN (sent as a bearer token when set; only needed if
# admin_listen is moved off loopback), LOCAL_PORT (first local port used; default 18081).
set -euo pipefail

namespace=giftrank
if [[ ${1:-} == -n ]]; then
    namespace=${2:?"-n needs a namespace"}
    shift 2
fi
action=${1:-}
case $action in
    status | reload | unpin) [[ $# -eq 1 ]] || action= ;;
    pin) [[ $# -eq 2 && $2 =~ ^[0-9]+$ ]] || action= ;;
    *) action= ;;
esac
if [[ -z $action ]]; then
    sed -n '7,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
version=${2:-}

selector=app.kubernetes.io/name=giftrank,app.kubernetes.io/component=ranker
admin_port=${LOCAL_PORT:-18081}
public_port=$((admin_port + 1))
auth=()
if [[ -n ${GIFTRANK_ADMIN_TOKEN:-} ]]; then
    auth=(-H "Authorization: Bearer ${GIFTRANK_ADMIN_TOKEN}")
fi

mapfile -t pods < <(kubectl -n "$namespace" get pods -l "$selector" \
    --field-selector=status.phase=Running -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')
if [[ ${#pods[@]} -eq 0 ]]; then
    echo "no running giftrank pods in namespace $namespace" >&2
    exit 1
fi

forward_pid=
stop_forward() {
    if [[ -n $forward_pid ]]; then
        kill "$forward_pid" 2>/dev/null || true
        wait "$forward_pid" 2>/dev/null || true
        forward_pid=
    fi
}
trap stop_forward EXIT

failed=0
for pod in "${pods[@]}"; do
    kubectl -n "$namespace" port-forward "pod/$pod" "$admin_port:8081" "$public_port:8080" >/dev/null 2>&1 &
    forward_pid=$!
    for _ in $(seq 50); do
        curl -fsS -o /dev/null "http://127.0.0.1:$public_port/healthz" 2>/dev/null && break
        sleep 0.2
    done
    case $action in
        status) request=(-X GET "http://127.0.0.1:$public_port/v1/models") ;;
        reload) request=(-X POST "http://127.0.0.1:$admin_port/admin/reload") ;;
        unpin) request=(-X POST "http://127.0.0.1:$admin_port/admin/unpin") ;;
        pin) request=(-X POST "http://127.0.0.1:$admin_port/admin/pin/$version") ;;
    esac
    if body=$(curl -sS --fail-with-body --max-time 30 "${auth[@]}" "${request[@]}" 2>&1); then
        result=ok
    else
        result=FAILED
        failed=1
    fi
    if [[ $action == status ]] && command -v jq >/dev/null && [[ $result == ok ]]; then
        body=$(jq -c '{serving: .serving.version, loaded_at: .serving.loaded_at, pinned,
            policy: (.policy | {source, file_error} + ({pin, canary, shadow}
                | map_values(if . == null or .in_force then del(.disk?) else . end))),
            versions}' <<<"$body")
    fi
    printf '%s %s: %s\n' "$pod" "$result" "$body"
    stop_forward
done
exit "$failed"
