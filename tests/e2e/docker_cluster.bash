# A keel cluster on the host's Docker engine, for bats tests: a `keel
# server` running every controller with short --node-grace-period /
# --node-eviction-timeout on a fixed loopback port (so that it can be killed
# and started again where its agents look for it), and three `keel agent
# --runtime docker` nodes, each with its own name and data directory; with
# helpers that compare the Tasks with the containers that really run.
# Shared by deployments_docker.bats and chaos_docker.bats:
#   load helpers
#   load docker_cluster
# Every test skips, saying why, where no engine answers or the image is
# missing.
#
# The three agents share one host, and the docker runtime reports the
# host's usage as each node's. E-PVM's load is the larger of bound requests
# and usage, so every replica requests all of the host's CPUs (Docker's
# ceiling for a limit) and memory: at least any usage, so that a bound
# replica always makes its node dearer and the placement is the test's to
# predict. Each agent claims 8 times that (--cpus, --memory). Requests are
# the containers' limits too; nothing is reserved.

GRACE=(--node-grace-period 2s --node-eviction-timeout 4s)
NODES=(a b c)

setup_file() {
	export HOST_CPUS HOST_MEM_MI
	HOST_CPUS=$(nproc)
	HOST_MEM_MI=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
	if ! docker info >/dev/null 2>&1; then
		export DOCKER_SKIP="no Docker engine answers (run .ci/docker-up)"
	elif ! docker image inspect keel/busybox:latest >/dev/null 2>&1; then
		export DOCKER_SKIP="no image keel/busybox:latest (run tests/e2e/busybox-image.sh)"
	fi
}

setup() {
	[ -z "${DOCKER_SKIP:-}" ] || skip "$DOCKER_SKIP"
	# Node names are unique to this run and test: teardown removes the
	# containers of these nodes, and only those.
	PREFIX=dd-${BATS_ROOT_PID:-$$}-$BATS_TEST_NUMBER
	declare -gA AGENT_PIDS=()
	WATCH_PID=""
	SERVER_PORT=$(free_port)
	keel_server_start "${GRACE[@]}" --listen "127.0.0.1:$SERVER_PORT"
	local n
	for n in "${NODES[@]}"; do
		agent_start "$n"
	done
	wait_for 30 nodes_ready 3
}

teardown() {
	[ -z "${DOCKER_SKIP:-}" ] || return 0
	if [ -n "$WATCH_PID" ]; then
		kill "$WATCH_PID" 2>/dev/null || true
		wait "$WATCH_PID" 2>/dev/null || true
	fi
	local n ids logs=("$SERVER_LOG") sanitizer=""
	for n in "${NODES[@]}"; do
		agent_stop "$n" TERM
		logs+=("$(agent_log "$n")")
	done
	keel_server_stop
	for n in "${NODES[@]}"; do
		ids=$(docker ps -aq --filter "label=keel.node=$(node "$n")")
		[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
	done
	# Sanitizer builds: any report in an agent's or the server's log fails the test.
	grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "${logs[@]}" >&2 && sanitizer=1
	if [ -n "${BATS_TEST_COMPLETED:-}" ] && [ -z "$sanitizer" ]; then return 0; fi
	for f in "${logs[@]}"; do
		echo "--- $f" >&2
		tail -n 25 "$f" >&2 || true
	done
	[ -z "$sanitizer" ]
}

node() { echo "$PREFIX-$1"; }
agent_log() { echo "$BATS_TEST_TMPDIR/agent-$1.log"; }

# agent_start N: starts node N's agent (again: same name and data directory).
agent_start() {
	"$KEEL" agent --server "$KEEL_URL" --token "$KEEL_TOKEN_VALUE" --name "$(node "$1")" \
		--runtime docker --data-dir "$BATS_TEST_TMPDIR/agent-$1" --heartbeat-interval 500ms \
		--backoff-base 1s --backoff-max 4s --cpus $((HOST_CPUS * 8)) --memory $((HOST_MEM_MI * 8))Mi \
		>>"$(agent_log "$1")" 2>&1 &
	AGENT_PIDS[$1]=$!
}

# agent_stop N [SIGNAL]: signals node N's agent (TERM by default) and waits.
agent_stop() {
	local pid=${AGENT_PIDS[$1]:-}
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -"${2:-TERM}" "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	AGENT_PIDS[$1]=""
}

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out waiting for: $*" >&2
			keel get nodes >&2 || true
			keel get tasks -o wide >&2 || true
			keel get deploy -o json 2>/dev/null | jq -c '.items[] | .status' >&2 || true
			docker ps -a --filter label=keel.managed=true --format \
				'{{.Label "keel.node"}} {{.Label "keel.task.name"}} {{.Label "keel.task.uid"}} {{.Status}}' >&2 || true
			return 1
		fi
		sleep 0.2
	done
}

ready_of() {
	keel get node "$1" -o json 2>/dev/null |
		jq -r '.status.conditions[]? | select(.type == "Ready") | .status'
}
node_ready_is() { [ "$(ready_of "$(node "$1")")" = "$2" ]; }
nodes_ready() {
	local n k=0
	for n in "${NODES[@]}"; do
		[ "$(ready_of "$(node "$n")")" = True ] && k=$((k + 1))
	done
	[ "$k" -ge "$1" ]
}

# deployment NAME VERSION: a Deployment of 4 busybox sleepers, VERSION in
# their environment. Default strategy: maxSurge 25% -> 1, maxUnavailable
# 25% -> 1. sleep as the container's pid 1 ignores SIGTERM: a stop waits
# out the 1 s grace period, then kills.
# deployment NAME VERSION [READY_AFTER]: applies Deployment NAME of 4
# replicas with env VERSION; with READY_AFTER (seconds), each replica
# becomes ready only that long after it started (an exec health check),
# so that every step of a rolling update lasts at least that long however
# fast the agents start containers.
deployment() {
	local cmd="exec sleep 600" check=""
	if [ -n "${3:-}" ]; then
		cmd="sleep $3; touch /tmp/ready; exec sleep 600"
		check="healthCheck: {exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1}"
	fi
	cat >"$BATS_TEST_TMPDIR/$1.yaml" <<YAML
apiVersion: keel/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: 4
  template:
    metadata: {labels: {app: $1}}
    spec:
      image: keel/busybox:latest
      command: [sh, -c, '$cmd']
      env: [{name: VERSION, value: "$2"}]
      terminationGracePeriodSeconds: 1
      $check
      resources:
        requests: {cpu: "$HOST_CPUS", memory: ${HOST_MEM_MI}Mi}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/$1.yaml"
}

tasks_json() { keel get tasks -l "app=$1" -o json; }

# Ready Tasks as sorted "UID NODE" lines.
ready_tasks() {
	tasks_json "$1" | jq -r '.items[] | select(.status.phase == "Running" and .status.ready == true) |
		"\(.metadata.uid) \(.spec.nodeName)"' | sort
}

# Running containers of the given nodes (letters; default all) as sorted
# "UID NODE" lines.
running_containers() {
	local n
	for n in "${@:-${NODES[@]}}"; do
		docker ps --filter label=keel.managed=true --filter "label=keel.node=$(node "$n")" \
			--format '{{.Label "keel.task.uid"}} {{.Label "keel.node"}}'
	done | sort
}

# all_up NAME N [NODE...]: the Deployment has exactly N Tasks, all Running
# and ready, its status says so, and the running containers on NODEs (all
# by default) are exactly one per Task, on the Task's node.
all_up() {
	local name=$1 n=$2
	shift 2
	[ "$(tasks_json "$name" | jq '.items | length')" = "$n" ] || return 1
	local tasks
	tasks=$(ready_tasks "$name")
	[ "$(grep -c . <<<"$tasks")" = "$n" ] || return 1
	[ "$(running_containers "$@")" = "$tasks" ] || return 1
	keel get deploy "$name" -o json | jq -e "
		.status.observedGeneration == .metadata.generation and .status.replicas == $n and
		.status.readyReplicas == $n and .status.updatedReplicas == $n" >/dev/null
}

# The template hashes of the Deployment's Tasks, sorted, unique.
hashes() { tasks_json "$1" | jq -r '[.items[].metadata.labels["keel/template-hash"]] | unique | .[]'; }
