# Sourced by the load scripts (tools/loadtest.sh, tools/request_ab.sh,
# tools/deadline_load.sh), from the repository root:
#   start_server BINARY PORT   /   stop_server
# starts BINARY serving the shipped models (models/gift) on 127.0.0.1:PORT, its admin
# listener on PORT+1 and gRPC on PORT+2, waits until /readyz answers and sets SERVER_PID.
start_server() {
  GIFTRANK_GRPC_LISTEN="127.0.0.1:$(($2 + 2))" \
    "$1" serve --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$(($2 + 1))" \
    --model-repo models/gift >/dev/null 2>&1 &
  SERVER_PID=$!
  until curl -sf "http://127.0.0.1:$2/readyz" >/dev/null; do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "$1 did not start" >&2; exit 1; }
    sleep 0.05
  done
}

# stop_server: stops the server start_server started and waits until it has exited.
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null || true
}
