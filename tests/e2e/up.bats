#!/usr/bin/env bats
# End-to-end tests of `keel up` and the newcomer's path: the README's
# quick-start command (.ci/quickstart, with a temp data directory, a free
# port and a node name of this test's own) and its 5-minute tour, read out
# of README.md and run line by line as written — on the process runtime
# always, and on Docker where an engine answers (else that test skips and
# says why). Also: Ctrl-C leaves the tasks running and the next keel up
# adopts them, --stop-tasks-on-exit stops them, the other examples, and
# keel up's usage errors.
#
# The CLI is left to find the server by itself, as the README says: keel up
# writes $XDG_CONFIG_HOME/keel/config, pointed at this test's temp dir.

load helpers

setup() {
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
	unset KEEL_CONFIG KEEL_SERVER KEEL_TOKEN KEEL_DATA_DIR
	export PATH=$(cd "$(dirname "$KEEL")" && pwd):$PATH
	export -f keel
	DATA=$BATS_TEST_TMPDIR/data
	NODE=up-${BATS_ROOT_PID:-$$}-$BATS_TEST_NUMBER
	UP_LOG=$BATS_TEST_TMPDIR/up.log
	UP_PID=""
	SIM_PID=""
	: >"$UP_LOG"
}

teardown() {
	[ -z "$SIM_PID" ] || { kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; }
	up_stop
	# what a failed test left behind: this test's processes and containers only
	local rec p
	for rec in "$DATA"/agent/tasks/*/*/record; do
		[ -f "$rec" ] || continue
		for p in $(jq -r '.pid, .supervisorPid' "$rec" 2>/dev/null); do
			[ "$p" -gt 1 ] 2>/dev/null && kill -9 "$p" 2>/dev/null || true
		done
	done
	if docker info >/dev/null 2>&1; then
		local ids
		ids=$(docker ps -aq --filter "label=keel.node=$NODE")
		[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
	fi
	# sanitizer builds: any report in keel up's log fails the test
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$UP_LOG"
}

# wait_for TRIES CMD...: runs CMD every 0.1 s until it succeeds.
wait_for() {
	local n=$1 i
	shift
	for i in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	keel get tasks -A -o wide >&2 || true
	tail -30 "$UP_LOG" >&2
	return 1
}

node_ready() {
	kill -0 "$UP_PID" 2>/dev/null || { cat "$UP_LOG" >&2; return 2; }
	keel get node "$NODE" 2>/dev/null | grep -q " Ready "
}

# up_start CMD...: runs keel up (or the quickstart) in the background and
# waits until this test's node is Ready.
up_start() {
	"$@" >>"$UP_LOG" 2>&1 &
	UP_PID=$!
	wait_for 600 node_ready
}

# up_stop [SIGNAL]: Ctrl-C (INT) by default; waits (bounded) for the exit
# and checks that it was clean.
up_stop() {
	local sig=${1:-INT} i
	[ -n "$UP_PID" ] || return 0
	kill -"$sig" "$UP_PID" 2>/dev/null || true
	for i in $(seq 1 300); do
		kill -0 "$UP_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$UP_PID" 2>/dev/null; then
		echo "keel up did not stop within 30 s of SIG$sig" >&2
		kill -9 "$UP_PID"
	fi
	local rc=0
	wait "$UP_PID" || rc=$?
	UP_PID=""
	[ "$rc" = 0 ] || { echo "keel up exited $rc" >&2; tail -20 "$UP_LOG" >&2; return 1; }
	grep -q "keel up: stopped cleanly" "$UP_LOG"
}

# "NAME=HOST:PORT" per Task of the web example that has a published port.
replicas() {
	keel get tasks -n web -o json |
		jq -r '.items[] | select(.status.ports[0].hostPort) | "\(.metadata.name)=\(.status.hostIP):\(.status.ports[0].hostPort)"'
}

# pages_answer GREETING N: exactly N replicas, each answering with its own name.
pages_answer() {
	local n=0 r
	for r in $(replicas); do
		curl -sf -m 5 "http://${r#*=}/" | grep -q "<h1>$1 from ${r%%=*}</h1>" || return 1
		n=$((n + 1))
	done
	[ "$n" = "$2" ]
}

deploy_ready() { # N: N replicas, all updated and ready
	[ "$(keel get deploy web -n web -o json 2>/dev/null |
		jq -r '"\(.status.readyReplicas // 0)/\(.status.updatedReplicas // 0)/\(.status.replicas // 0)"')" = "$1/$1/$1" ]
}

# Nothing of the web example runs any more: no Task, and none of the
# addresses seen answers; with docker, no container of this node.
nothing_left() {
	[ -z "$(keel get tasks -A -o name 2>/dev/null)" ] || return 1
	local a
	for a in $SEEN; do
		! curl -s -m 2 -o /dev/null "http://$a/" || return 1
	done
	if [ "$RUNTIME" = docker ]; then
		[ -z "$(docker ps -aq --filter "label=keel.node=$NODE")" ] || return 1
	fi
	return 0
}

remember_addresses() {
	local r
	for r in $(replicas); do
		case " $SEEN " in *" ${r#*=} "*) ;; *) SEEN="$SEEN ${r#*=}" ;; esac
	done
}

# The tour: the first ```sh block after "## A 5-minute tour" in README.md.
tour_lines() {
	awk '/^## A 5-minute tour/ {t = 1} t && /^```sh/ {b = 1; next} b && /^```/ {exit} b' \
		"$KEEL_SRC/README.md"
}

# tour_check LINE: what a user would look for after running LINE ($output).
tour_check() {
	case $1 in
	"keel get nodes -o wide")
		assert_line --regexp "^$NODE +Ready .* $RUNTIME +127\.0\.0\.1$" ;;
	"keel get deployments -n web")
		assert_line --regexp '^web +3/3 +3 +3 ' ;;
	"keel get tasks -n web -o wide")
		assert_line --index 0 --regexp '^NAME +READY +STATUS +RESTARTS +AGE +NODE +PORTS +IMAGE$'
		[ "$(grep -cE " 1/1 +Running .* $NODE +127\.0\.0\.1:[0-9]+->8080 " <<<"$output")" = "$REPLICAS" ]
		remember_addresses ;;
	"for a in"*)
		[ "$(grep -c '^<h1>hello from web-' <<<"$output")" = 3 ] ;;
	"keel describe"*)
		assert_line --regexp "^Node: +$NODE$"
		assert_line --regexp '^Status: +Running \(ready\)$'
		assert_line --regexp '^Ports: +127\.0\.0\.1:[0-9]+->8080$'
		assert_line --regexp '^  Normal +Scheduled '
		assert_line --partial "Controlled By:"
		;;
	"keel logs"*)
		assert_output --partial "serving www/ on port" ;;
	"keel scale"*)
		assert_output "deployment/web scaled"
		REPLICAS=5 ;;
	"keel rollout status"*)
		assert_output --partial "successfully rolled out"
		wait_for 300 pages_answer "$GREETING" "$REPLICAS"
		remember_addresses ;;
	"keel apply -f examples/web-v2/")
		assert_output "deployment/web configured"
		REPLICAS=3 GREETING="hello again (v2)" ;;
	"keel rollout history"*)
		assert_line --regexp '^REVISION ' ;;
	"keel top nodes")
		assert_line --index 0 --regexp '^NAME +CPU USED +CPU REQUESTED +CPU CAPACITY +MEMORY USED +MEMORY REQUESTED +MEMORY CAPACITY +TASKS$'
		assert_line --regexp "^$NODE +[0-9]+m \([0-9]+%\) +300m \([0-9]+%\) +[0-9]+ +([0-9.]+[KMG]?i?) \([0-9]+%\) +96Mi \([0-9]+%\) +[0-9.]+[KMG]i +3$" ;;
	"keel top tasks -n web")
		[ "$(grep -cE "^web-[a-z0-9]+-[a-z0-9]+ +([0-9]+m|-) +([0-9.]+[KMG]?i?|-) +100m/32Mi +250m/64Mi +$NODE$" <<<"$output")" = 3 ] ;;
	"keel delete -f examples/web/")
		assert_line "namespace/web deleted"
		wait_for 600 nothing_left ;;
	"keel get tasks -A")
		assert_output "No resources found" ;;
	*)
		echo "no check for tour line: $1" >&2
		return 1 ;;
	esac
}

run_tour() {
	REPLICAS=3 GREETING=hello SEEN=""
	wait_for 600 deploy_ready 3
	wait_for 300 pages_answer hello 3
	local line n=0
	while IFS= read -r line; do
		case $line in "" | "#"* | "export PATH="*) continue ;; esac
		cd "$KEEL_SRC"
		run bash -c "$line"
		if [ "$status" != 0 ]; then
			echo "tour line failed ($status): $line" >&2
			echo "$output" >&2
			return 1
		fi
		tour_check "$line"
		n=$((n + 1))
	done < <(tour_lines)
	[ "$n" -ge 15 ] # the whole tour ran
}

@test "quick start and tour on the process runtime: every replica answers, a rolling update, delete leaves nothing" {
	RUNTIME=process
	# --interval 1h: the tour's hand changes (scale, web-v2, delete) are not
	# put back by a full sync pass while it runs
	up_start env KEEL="$KEEL" "$KEEL_SRC/.ci/quickstart" --runtime process \
		--data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE" --interval 1h
	grep -q "node $NODE runs tasks with the process runtime: --runtime process was given" "$UP_LOG"
	grep -q "keel up: the CLI finds this server with no flags (through $XDG_CONFIG_HOME/keel/config)" "$UP_LOG"
	grep -q 'keel up: keeping examples/web in sync as apply set "web-' "$UP_LOG"
	# the sync's counters are on the server's /metrics
	run curl -sf -H "Authorization: Bearer $(cat "$DATA/admin.token")" \
		"$(jq -r .server "$DATA/config")/metrics"
	assert_line --regexp '^keel_sync_passes_total\{set="web-[0-9a-f]+"\} [1-9][0-9]*$'
	assert_line --regexp '^keel_sync_created_total\{set="web-[0-9a-f]+"\} 2$'
	run_tour
	up_stop INT
}

@test "quick start and tour on Docker, chosen because an engine answers" {
	docker info >/dev/null 2>&1 || skip "no Docker engine answers (.ci/docker-up starts one where it can)"
	docker image inspect keel/busybox:latest >/dev/null 2>&1 ||
		skip "no keel/busybox:latest image (tests/e2e/busybox-image.sh builds it)"
	RUNTIME=docker
	up_start env KEEL="$KEEL" "$KEEL_SRC/.ci/quickstart" \
		--data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE" --interval 1h
	grep -q "node $NODE runs tasks with the docker runtime: a Docker engine answers on /var/run/docker.sock" "$UP_LOG"
	run_tour
	up_stop INT
}

@test "Ctrl-C leaves the tasks running, the next keel up adopts them, --stop-tasks-on-exit stops them" {
	RUNTIME=process
	up_start "$KEEL" up -f "$KEEL_SRC/examples/web" --runtime process --data-dir "$DATA" \
		--listen 127.0.0.1:0 --name "$NODE"
	wait_for 600 deploy_ready 3
	wait_for 300 pages_answer hello 3
	before=$(keel get tasks -n web -o json | jq -c '[.items[] | {n: .metadata.name, c: .status.containerID, r: .status.restartCount}] | sort_by(.n)')
	addrs=$(replicas)

	up_stop INT
	grep -q "keel up: SIGINT: stopping (tasks keep running)" "$UP_LOG"
	# keel is gone, its replicas are not
	run keel get nodes
	assert_failure
	for r in $addrs; do
		run curl -sf -m 5 "http://${r#*=}/"
		assert_output "<h1>hello from ${r%%=*}</h1>"
	done

	: >"$UP_LOG"
	up_start "$KEEL" up --runtime process --data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE"
	wait_for 300 deploy_ready 3
	after=$(keel get tasks -n web -o json | jq -c '[.items[] | {n: .metadata.name, c: .status.containerID, r: .status.restartCount}] | sort_by(.n)')
	assert_equal "$after" "$before" # same containers, no restart: adopted
	run grep -c "agent: task .* started" "$UP_LOG"
	assert_output 0
	run replicas
	assert_output "$addrs"
	wait_for 300 pages_answer hello 3

	up_stop TERM
	: >"$UP_LOG"
	up_start "$KEEL" up --runtime process --data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE" \
		--stop-tasks-on-exit
	grep -q "Ctrl-C stops keel; tasks are stopped too (--stop-tasks-on-exit)" "$UP_LOG"
	up_stop INT
	[ "$(grep -c "agent: stopping proc-" "$UP_LOG")" = 3 ]
	for r in $addrs; do
		run curl -s -m 2 "http://${r#*=}/"
		assert_failure
	done
	# and no process of this test is left with its working directory under DATA
	run bash -c "ls -l /proc/[0-9]*/cwd 2>/dev/null | grep -c '$DATA'"
	assert_output 0
}

@test "hello: one Task prints and exits; apply --wait; why a Task does not run; batch: E-PVM spreads Tasks over four nodes" {
	RUNTIME=process
	up_start "$KEEL" up --runtime process --data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE"
	run keel apply -f "$KEEL_SRC/examples/hello/" --wait
	assert_success
	assert_line "task/hello created"
	assert_line "task/hello: Succeeded: Completed"
	run keel get task hello
	assert_line --regexp '^hello +0/1 +Completed +0 '
	run keel logs hello
	assert_line "hello from keel"

	# a Task that cannot run says why: in apply --wait's progress, get, describe
	cat >"$BATS_TEST_TMPDIR/big.yaml" <<'YAML'
apiVersion: keel/v1
kind: Task
metadata: {name: big}
spec:
  image: keel/busybox:latest
  command: [sleep, "60"]
  resources: {requests: {memory: 900Gi}}
YAML
	run keel apply -f "$BATS_TEST_TMPDIR/big.yaml" --wait --timeout 5s
	assert_failure 1
	assert_line "task/big: Pending: Unschedulable: 0/1 nodes fit: 1 insufficient memory"
	assert_line --partial 'error: timed out waiting for task "big"'
	run keel get tasks -o wide
	assert_line --regexp '^big +0/1 +Unschedulable +0 +[0-9]+s +<none> +<none> +keel/busybox:latest$'
	run keel describe task big
	assert_line "Node:         <none> (not scheduled yet)"
	assert_line "Reason:       Unschedulable"
	assert_line "Message:      0/1 nodes fit: 1 insufficient memory"
	assert_line --regexp '^  Warning +FailedScheduling +[0-9]+s +keel-scheduler +0/1 nodes fit: 1 insufficient memory$'
	keel delete task big

	"$KEEL" agent --runtime sim --simulate 3 --name "$NODE-sim" --cpus 2 --memory 4Gi \
		--sim-start-delay 200ms >>"$BATS_TEST_TMPDIR/sim.log" 2>&1 &
	SIM_PID=$!
	wait_for 300 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 4 ]"
	run keel apply -f "$KEEL_SRC/examples/batch/"
	assert_success
	assert_line "task/train created"
	all_bound() { [ "$(keel get tasks -n batch -o json | jq '[.items[] | select(.spec.nodeName)] | length')" = 8 ]; }
	wait_for 300 all_bound
	run bash -c "keel get tasks -n batch -o json | jq -r '.items[].spec.nodeName' | sort -u | wc -l"
	[ "$output" -ge 3 ] # spread, not packed on one node
	run keel top nodes
	assert_line --regexp "^$NODE-sim-0000 "
	run keel delete -f "$KEEL_SRC/examples/batch/"
	assert_success
	wait_for 300 bash -c '[ -z "$(keel get tasks -n batch -o name 2>/dev/null)" ]'
}

@test "apply --wait follows every object at once: a stuck first Task neither hides nor holds up the next" {
	up_start "$KEEL" up --runtime process --data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE"
	cat >"$BATS_TEST_TMPDIR/two.yaml" <<'YAML'
apiVersion: keel/v1
kind: Task
metadata: {name: big}
spec:
  image: keel/busybox:latest
  command: [sleep, "60"]
  resources: {requests: {memory: 900Gi}}
---
apiVersion: keel/v1
kind: Task
metadata: {name: runs}
spec:
  image: keel/busybox:latest
  command: [sleep, "60"]
YAML
	SECONDS=0
	run keel apply -f "$BATS_TEST_TMPDIR/two.yaml" --wait --timeout 8s
	assert_failure 1
	[ "$SECONDS" -lt 20 ]
	assert_line "task/big created"
	assert_line "task/runs created"
	assert_line "task/runs: Running (ready)"
	assert_line "task/big: Pending: Unschedulable: 0/1 nodes fit: 1 insufficient memory"
	assert_line 'error: timed out waiting for task "big" (Pending: Unschedulable: 0/1 nodes fit: 1 insufficient memory)'
	refute_line --partial 'timed out waiting for task "runs"'
	refute_line --partial 'timed out before'
	keel delete task big runs
}

@test "keel up: help, usage errors, the runtime rule and a config of the user's own" {
	run keel up --help
	assert_success
	assert_output --partial "--stop-tasks-on-exit"
	assert_output --partial "Examples:"
	assert_output --partial "keel up -f examples/web"
	run keel up --stop-tasks
	assert_failure 2
	assert_output --partial 'unknown flag "--stop-tasks" for "keel up"; did you mean "--stop-tasks-on-exit"?'
	run keel up --runtime podman --data-dir "$DATA"
	assert_failure 2
	assert_output 'error: --runtime: unknown runtime "podman" (docker or process)'
	run keel up --runtime docker --docker-socket "$BATS_TEST_TMPDIR/no.sock" --data-dir "$DATA"
	assert_failure 1
	assert_output --partial "no Docker engine answers on $BATS_TEST_TMPDIR/no.sock"
	run keel up -f "$BATS_TEST_TMPDIR/missing" --data-dir "$DATA"
	assert_failure 2
	run keel up extra --data-dir "$DATA"
	assert_failure 2
	run keel up --interval 10s --data-dir "$DATA"
	assert_failure 2
	assert_output "error: --interval is for -f DIR (how often DIR is re-applied)"
	run keel up -f "$KEEL_SRC/examples/web" --interval 10ms --data-dir "$DATA"
	assert_failure 2
	assert_output 'error: --interval "10ms": not a duration of 1s or more (30s, 5m)'
	# the server's limit flags, checked as keel server checks them
	run keel up --max-body 10 --data-dir "$DATA"
	assert_failure 2
	assert_output 'error: --max-body: size "10" is out of range (1024 to 1073741824 bytes)'
	run keel up --request-timeout soon --data-dir "$DATA"
	assert_failure 2
	assert_output 'error: --request-timeout: invalid duration "soon" (examples: 15s, 500ms, 2m)'
	run keel up --server http://127.0.0.1:1 --data-dir "$DATA"
	assert_failure 2
	assert_output --partial "error: keel up runs its own server"

	# a config of the user's own that names another server is left alone
	mkdir -p "$XDG_CONFIG_HOME/keel"
	echo '{"server": "http://127.0.0.1:1", "token": "mine"}' >"$XDG_CONFIG_HOME/keel/config"
	RUNTIME=process
	"$KEEL" up --runtime process --docker-socket "$BATS_TEST_TMPDIR/no.sock" --data-dir "$DATA" \
		--listen 127.0.0.1:0 --name "$NODE" >>"$UP_LOG" 2>&1 &
	UP_PID=$!
	wait_for 300 grep -q "export KEEL_CONFIG=$DATA/config" "$UP_LOG"
	grep -q "points at another server; left as it is" "$UP_LOG"
	grep -q "the CLI here would talk to http://127.0.0.1:1 (from $XDG_CONFIG_HOME/keel/config)" "$UP_LOG"
	run cat "$XDG_CONFIG_HOME/keel/config"
	assert_output '{"server": "http://127.0.0.1:1", "token": "mine"}'
	wait_for 300 bash -c "KEEL_CONFIG=$DATA/config keel get node $NODE | grep -q ' Ready '"
	up_stop INT
}

@test "completion: keel completion bash completes commands, flags, kinds and live names" {
	run keel completion bash
	assert_success
	assert_line --regexp "^_keel_flags_up='.*--stop-tasks-on-exit"
	assert_line --regexp "^_keel_flags_agent='.*--runtime"
	run keel completion zsh
	assert_failure 2
	complete_words() {
		bash -c 'source <(keel completion bash)
			COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _keel
			echo "${COMPREPLY[*]}"' _ "$@"
	}
	run complete_words keel ge
	assert_output "get"
	run complete_words keel get deploy
	assert_output "deployments"
	run complete_words keel scale deployment web --rep
	assert_output "--replicas"
	run complete_words keel up --runtime p
	assert_output "process"
	run complete_words keel rollout status --ti
	assert_output "--timeout"

	RUNTIME=process
	up_start "$KEEL" up -f "$KEEL_SRC/examples/hello" --runtime process --data-dir "$DATA" \
		--listen 127.0.0.1:0 --name "$NODE"
	run complete_words keel describe task he
	assert_output "hello"
	run complete_words keel get nodes up-
	assert_output "$NODE"
}

@test "a second keel up leaves the config of a keel up that still runs" {
	RUNTIME=process
	up_start "$KEEL" up --runtime process --data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE"
	first=$(jq -r .server "$XDG_CONFIG_HOME/keel/config")
	[ "$(jq -r .writtenBy "$XDG_CONFIG_HOME/keel/config")" = "keel up" ]
	log2=$BATS_TEST_TMPDIR/up2.log
	"$KEEL" up --runtime process --data-dir "$BATS_TEST_TMPDIR/data2" --listen 127.0.0.1:0 \
		--name "$NODE-2" >"$log2" 2>&1 &
	pid2=$!
	wait_for 300 grep -q "export KEEL_CONFIG=$BATS_TEST_TMPDIR/data2/config" "$log2"
	grep -q "points at another keel up that is still running ($first); left as it is" "$log2"
	[ "$(jq -r .server "$XDG_CONFIG_HOME/keel/config")" = "$first" ]
	kill -INT "$pid2"
	wait "$pid2"
	# the CLI still reaches the first one
	run keel get node "$NODE"
	assert_success
	up_stop INT
	# once the first has stopped, the next keel up takes the file over
	UP_LOG=$BATS_TEST_TMPDIR/up3.log
	NODE=$NODE-2
	up_start "$KEEL" up --runtime process --data-dir "$BATS_TEST_TMPDIR/data2" \
		--listen 127.0.0.1:0 --name "$NODE"
	[ "$(jq -r .server "$XDG_CONFIG_HOME/keel/config")" != "$first" ]
	up_stop INT
}

@test "keel up hands the limit flags to its server; its own controllers and agent fit the per-client watch limit" {
	up_start "$KEEL" up --runtime process --data-dir "$DATA" --listen 127.0.0.1:0 --name "$NODE" \
		--max-body 8Ki --max-watchers-per-client 50 --store-size 64Mi
	cfg=$XDG_CONFIG_HOME/keel/config
	url=$(jq -r .server "$cfg") tok=$(jq -r .token "$cfg")
	head -c 10000 /dev/zero | tr '\0' ' ' >"$BATS_TEST_TMPDIR/big"
	run curl -s -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		--data-binary @"$BATS_TEST_TMPDIR/big" "$url/apis/keel/v1/namespaces/default/tasks"
	assert_output --partial '"message":"request body too large: Content-Length 10000 is over the limit of 8Ki (--max-body)"'
	metrics=$(curl -s -H "Authorization: Bearer $tok" "$url/metrics")
	grep -qx 'keel_limit_rejections_total{limit="watches_per_client"} 0' <<<"$metrics"
	[ "$(awk '/^keel_watchers /{print $2}' <<<"$metrics")" -ge 2 ]
	grep -qx 'keel_store_map_size_bytes 67108864' <<<"$metrics"
}
