#!/usr/bin/env bats
# keel server on the etcd backend: the --store flags, the start that waits
# for etcd and refuses without it, readiness and metrics that follow the
# etcd cluster's health, and the fixture that leaves no member behind.

load helpers

setup() { needs_etcd; }
teardown() {
	keel_server_stop KILL
	etcd_cluster_stop
}

@test "store flags: etcd without endpoints, a bad entry, etcd-only flags on lmdb are usage errors naming the flag" {
	run "$KEEL" server --store etcd
	assert_failure 2
	assert_output "keel server: --store etcd needs --etcd-endpoints http://HOST:PORT[,...]"
	run "$KEEL" server --store etcd --etcd-endpoints http://127.0.0.1:2379,127.0.0.1:2380
	assert_failure 2
	assert_output 'keel server: --etcd-endpoints: entry 2 "127.0.0.1:2380": want http://HOST:PORT'
	run "$KEEL" server --etcd-prefix /x/
	assert_failure 2
	assert_output "keel server: --etcd-prefix needs --store etcd (the store is lmdb)"
	run "$KEEL" server --store sqlite
	assert_failure 2
	assert_output 'keel server: --store: invalid store "sqlite" (lmdb or etcd)'
	run "$KEEL" server --help
	assert_output --partial "--etcd-endpoints URLS"
}

@test "no endpoint answers: the server waits --etcd-wait, then exits 1 naming every endpoint" {
	p1=$(free_port)
	p2=$(free_port)
	start=$(date +%s%N)
	run timeout 20 "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:0 \
		--store etcd --etcd-endpoints "http://127.0.0.1:$p1,http://127.0.0.1:$p2" --etcd-wait 1s
	took=$((($(date +%s%N) - start) / 1000000))
	assert_failure 1
	assert_output --partial "no etcd endpoint answers with a healthy cluster after --etcd-wait 1s"
	assert_output --partial "http://127.0.0.1:$p1: Couldn't connect to server"
	assert_output --partial "http://127.0.0.1:$p2: Couldn't connect to server"
	[ "$took" -ge 900 ] && [ "$took" -lt 10000 ]
}

@test "3-member etcd: ready while a quorum answers, 503 naming the endpoints without one, ready again when it is back" {
	etcd_cluster_start 3
	keel_server_start --controllers=none --store etcd --etcd-endpoints "$ETCD_ENDPOINTS"
	run curl -s "$KEEL_URL/readyz"
	assert_output ok
	run api GET /metrics
	assert_line 'keel_store_backend{backend="etcd"} 1'
	assert_line "keel_etcd_healthy_endpoints 3"
	# a Task written through keel is in etcd, under the default prefix
	keel apply -f - <<<'{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"t1"},"spec":{"image":"busybox"}}'
	run etcdctl --endpoints "$ETCD_ENDPOINTS" get --prefix /keel/ --keys-only
	assert_output --partial "/keel/tasks/default/t1"

	etcd_member_kill 1
	sleep 2.5
	run curl -s "$KEEL_URL/readyz"
	assert_output ok
	run api GET /metrics
	assert_line "keel_etcd_healthy_endpoints 2"
	assert_line "keel_etcd_endpoint_healthy{endpoint=\"$(etcd_member_url 1)\"} 0"

	etcd_member_kill 2 # no quorum: m3 has no leader
	for i in $(seq 1 100); do
		code=$(curl -s -o "$BATS_TEST_TMPDIR/ready" -w '%{http_code}' "$KEEL_URL/readyz")
		[ "$code" = 503 ] && break
		sleep 0.1
	done
	[ "$code" = 503 ]
	run cat "$BATS_TEST_TMPDIR/ready"
	assert_output --partial "not ready: etcd: no healthy endpoint: $(etcd_member_url 1): Couldn't connect to server"
	assert_output --regexp "$(etcd_member_url 3): (no answer in 1000ms \(a member without quorum does not answer\)|unhealthy)"
	# liveness does not follow etcd
	run curl -s "$KEEL_URL/healthz"
	assert_output ok

	etcd_member_start 1
	etcd_member_start 2
	for i in $(seq 1 100); do
		[ "$(curl -s "$KEEL_URL/readyz")" = ok ] && break
		sleep 0.1
	done
	run curl -s "$KEEL_URL/readyz"
	assert_output ok
	run keel get task t1 -o name
	assert_output task/t1
}

@test "the fixture: a killed member restarts on its data, and stopping leaves no etcd process" {
	etcd_cluster_start 3
	etcdctl --endpoints "$ETCD_ENDPOINTS" put k v1
	etcd_member_kill 2
	etcdctl --endpoints "$(etcd_member_url 1)" put k v2
	etcd_member_start 2
	run etcdctl --endpoints "$(etcd_member_url 2)" get k --print-value-only
	assert_output v2
	pids=$(cat "$ETCD_DIR"/m*/pid)
	etcd_cluster_stop
	for p in $pids; do
		! kill -0 "$p" 2>/dev/null
	done
	run pgrep -f -- "--data-dir $ETCD_DIR/"
	assert_failure
}

@test "etcd store: one server per data directory, as with LMDB (its files and its controllers' identity are its own)" {
	etcd_cluster_start 1
	mkdir -p "$BATS_TEST_TMPDIR/d"
	"$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:0 --store etcd \
		--etcd-endpoints "$ETCD_ENDPOINTS" >"$BATS_TEST_TMPDIR/first.log" 2>&1 &
	FIRST=$!
	for i in $(seq 1 100); do
		grep -q 'listening on' "$BATS_TEST_TMPDIR/first.log" && break
		sleep 0.05
	done
	run timeout 10 "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:0 --store etcd \
		--etcd-endpoints "$ETCD_ENDPOINTS"
	kill "$FIRST"; wait "$FIRST" || true
	[ "$status" -eq 1 ]
	[[ "$output" == *"data directory $BATS_TEST_TMPDIR/d is in use by another keel server (pid $FIRST)"* ]]
}

# With quorum lost, every store call waited on etcd (3 s a try, 6 rounds):
# the --threads HTTP threads were all held, and /healthz, /readyz and new
# connections went unanswered. Now the probe's verdict makes API requests
# fail fast with 503 naming etcd and the endpoints, and a write already
# submitted gets an error (never a 201); when quorum is back, everything
# works again without a restart.
@test "quorum lost: API requests get 503 naming etcd at once, /healthz and /readyz answer, a write in flight is not acknowledged; back without a restart" {
	NS=/apis/keel/v1/namespaces/default
	etcd_cluster_start 3
	keel_server_start --controllers=none --threads 2 --store etcd --etcd-endpoints "$ETCD_ENDPOINTS"
	keel apply -f - <<<'{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"t1"},"spec":{"image":"busybox"}}'
	etcd_member_kill 2
	etcd_member_kill 3
	# a write submitted as quorum goes: answered, but not with a 201
	api POST "$NS/tasks" -o /dev/null -w '%{http_code}' --max-time 30 \
		-d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"inflight"},"spec":{"image":"busybox"}}' \
		>"$BATS_TEST_TMPDIR/inflight" &
	local wp=$!
	# readers on both threads' worth of connections while the probe finds out
	local i
	for i in 1 2 3 4; do
		api GET "$NS/tasks/t1" -o /dev/null --max-time 30 &
	done
	# the probe needs a second or two to find out (the member left answers
	# nothing in 1 s); until then the readers may hold both threads
	start=$(date +%s%N)
	for i in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$KEEL_URL/readyz") || true
		[ "$code" = 503 ] && break
		sleep 0.1
	done
	echo "readyz 503 after $((($(date +%s%N) - start) / 1000000))ms" >&2
	[ "$code" = 503 ]
	run curl -s -w ' %{http_code}' --max-time 1 "$KEEL_URL/healthz"
	assert_output "ok 200"
	run curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$KEEL_URL/readyz"
	assert_output 503
	# a read and a write: 503 at once, the Status names etcd and the endpoints
	local what
	for what in "GET $NS/tasks/t1" "GET $NS/tasks" "POST $NS/tasks"; do
		start=$(date +%s%N)
		run api ${what% *} "${what#* }" -D "$BATS_TEST_TMPDIR/h" --max-time 5 \
			-d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"t2"},"spec":{"image":"busybox"}}'
		took=$((($(date +%s%N) - start) / 1000000))
		echo "$what: ${took}ms $output" >&2
		[ "$took" -lt 1000 ]
		[ "$(jq -r .code <<<"$output")" = 503 ]
		[ "$(jq -r .reason <<<"$output")" = ServiceUnavailable ]
		jq -r .message <<<"$output" | grep -F "etcd: no healthy endpoint ($(etcd_member_url 1): "
		jq -r .message <<<"$output" | grep -F "$(etcd_member_url 2): Couldn't connect to server"
	done
	wait "$wp"
	run cat "$BATS_TEST_TMPDIR/inflight"
	echo "in-flight write: $output" >&2
	[[ "$output" =~ ^(503|504)$ ]]
	# a client without a token still gets its 401 first
	run curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$KEEL_URL$NS/tasks"
	assert_output 401

	etcd_member_start 2
	etcd_member_start 3
	for i in $(seq 1 100); do
		[ "$(curl -s --max-time 1 "$KEEL_URL/readyz")" = ok ] && break
		sleep 0.1
	done
	run keel get task t1 -o name
	assert_output task/t1
	keel apply -f - <<<'{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"t3"},"spec":{"image":"busybox"}}'
	run keel get task t3 -o name
	assert_output task/t3
}
