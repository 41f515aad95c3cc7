# A real etcd cluster for keel's tests: 1 or 3 members on free loopback
# ports, their data dirs under one directory; sourced by helpers.bash (so
# every .bats file has it) and by tests/e2e/etcd-run.
#   etcd_cluster_start N [DIR]  N members (1 or 3), waits until every one
#                               is healthy; exports ETCD_DIR and ETCD_ENDPOINTS
#                               ("http://127.0.0.1:C1,http://127.0.0.1:C2,...")
#   etcd_member_kill I [SIG]    stops member I (1-based; KILL by default); while
#                               a majority runs, waits until it is healthy
#                               again (a leader elected)
#   etcd_member_start I         starts member I again on its data dir and ports
#   etcd_wait_healthy [I...]    waits until those members (default: all
#                               running) answer etcdctl endpoint health
#   etcd_member_url I           member I's client URL
#   etcd_cluster_stop           stops every member and waits for them
# Member I's files are $ETCD_DIR/mI/: data/, log, pid, client (URL), peer
# (URL). A watchdog kills the members when the process that started them
# ($ETCD_OWNER_PID, default $$: the bats test, or etcd-run) is gone, so a
# test killed halfway leaves no etcd behind.

: "${ETCD:=etcd}"
: "${ETCDCTL:=etcdctl}"

# etcd_free_port: a loopback port nothing listens on now.
etcd_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

etcd_member_url() { cat "$ETCD_DIR/m$1/client"; }

# _etcd_run I STATE: starts member I (its ports and cluster already chosen).
_etcd_run() {
	local i=$1 state=$2 m="$ETCD_DIR/m$1"
	local client peer
	client=$(cat "$m/client")
	peer=$(cat "$m/peer")
	# fd 3 closed: bats waits for every process that holds it
	"$ETCD" --name "m$i" --data-dir "$m/data" \
		--listen-client-urls "$client" --advertise-client-urls "$client" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--initial-cluster "$(cat "$ETCD_DIR/cluster")" --initial-cluster-state "$state" \
		--initial-cluster-token "keel-test-$$" \
		--max-request-bytes 4194304 --logger zap --log-outputs stderr \
		>>"$m/log" 2>&1 3>&- </dev/null &
	echo $! >"$m/pid"
	disown $! 2>/dev/null || true # no "Killed" line when a test kills it
}

etcd_cluster_start() {
	local n=${1:-1} dir=${2:-${BATS_TEST_TMPDIR:-$(mktemp -d)}/etcd}
	command -v "$ETCD" >/dev/null || { echo "etcd_cluster_start: no $ETCD in PATH (apt-get install etcd-server etcd-client)" >&2; return 1; }
	mkdir -p "$dir"
	export ETCD_DIR=$dir
	local i ports=() p cluster="" eps=""
	while [ ${#ports[@]} -lt $((2 * n)) ]; do
		p=$(etcd_free_port)
		[[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
	done
	for i in $(seq 1 "$n"); do
		mkdir -p "$dir/m$i"
		echo "http://127.0.0.1:${ports[$((2 * i - 2))]}" >"$dir/m$i/client"
		echo "http://127.0.0.1:${ports[$((2 * i - 1))]}" >"$dir/m$i/peer"
		cluster+="${cluster:+,}m$i=$(cat "$dir/m$i/peer")"
		eps+="${eps:+,}$(cat "$dir/m$i/client")"
	done
	echo "$cluster" >"$dir/cluster"
	echo "$n" >"$dir/members"
	export ETCD_ENDPOINTS=$eps
	for i in $(seq 1 "$n"); do
		_etcd_run "$i" new
	done
	_etcd_watchdog "${ETCD_OWNER_PID:-$$}"
	etcd_wait_healthy
}

# A background loop that stops the members once the owner is gone (or
# etcd_cluster_stop removed $ETCD_DIR/members).
_etcd_watchdog() {
	local owner=$1 dir=$ETCD_DIR
	(
		while kill -0 "$owner" 2>/dev/null && [ -f "$dir/members" ]; do
			sleep 1
		done
		for f in "$dir"/m*/pid; do
			[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
		done
	) >/dev/null 2>&1 3>&- </dev/null &
	echo $! >"$dir/watchdog.pid"
}

etcd_member_running() {
	local f="$ETCD_DIR/m$1/pid"
	[ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

etcd_wait_healthy() {
	local members=("$@") i t
	if [ ${#members[@]} -eq 0 ]; then
		for i in $(seq 1 "$(cat "$ETCD_DIR/members")"); do
			etcd_member_running "$i" && members+=("$i")
		done
	fi
	for i in "${members[@]}"; do
		for t in $(seq 1 300); do
			"$ETCDCTL" --endpoints "$(etcd_member_url "$i")" --dial-timeout 1s \
				--command-timeout 2s endpoint health >/dev/null 2>&1 && break
			if ! etcd_member_running "$i"; then
				echo "etcd member m$i exited; its log:" >&2
				tail -20 "$ETCD_DIR/m$i/log" >&2
				return 1
			fi
			if [ "$t" -eq 300 ]; then
				echo "etcd member m$i is not healthy after 30 s; its log:" >&2
				tail -20 "$ETCD_DIR/m$i/log" >&2
				return 1
			fi
			sleep 0.1
		done
	done
}

etcd_member_kill() {
	local i=$1 sig=${2:-KILL} f="$ETCD_DIR/m$1/pid"
	[ -f "$f" ] || return 0
	local pid
	pid=$(cat "$f")
	kill -"$sig" "$pid" 2>/dev/null || true
	# not our child when the cluster was started in another (sub)shell:
	# polled, not waited for
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$f"
	# with a majority left, wait for its new leader: a write right after
	# the kill of the leader would fail with "request timed out"
	local j running=0 n
	n=$(cat "$ETCD_DIR/members")
	for j in $(seq 1 "$n"); do
		etcd_member_running "$j" && running=$((running + 1))
	done
	if [ $((2 * running)) -gt "$n" ]; then
		etcd_wait_healthy
	fi
}

etcd_member_start() {
	etcd_member_running "$1" && return 0
	_etcd_run "$1" existing
	etcd_wait_healthy "$1"
}

# KILL, not TERM: a member that is told to stop hands its leadership over
# first, which takes seconds with its peers going too; nothing of the
# cluster is kept after a test.
etcd_cluster_stop() {
	[ -n "${ETCD_DIR:-}" ] && [ -d "$ETCD_DIR" ] || return 0
	local f pid
	for f in "$ETCD_DIR"/m*/pid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	for f in "$ETCD_DIR"/m*/pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
		rm -f "$f"
	done
	rm -f "$ETCD_DIR/members"
	[ -f "$ETCD_DIR/watchdog.pid" ] && kill "$(cat "$ETCD_DIR/watchdog.pid")" 2>/dev/null
	rm -f "$ETCD_DIR/watchdog.pid"
	return 0
}

# needs_etcd: in a bats test, skips (saying why) where there is no etcd
# binary; under CI=true fails instead: CI must not pass by skipping etcd.
needs_etcd() {
	command -v "$ETCD" >/dev/null && command -v "$ETCDCTL" >/dev/null && return 0
	if [ "${CI:-}" = "true" ]; then
		echo "no $ETCD/$ETCDCTL in PATH and CI=true: install etcd-server etcd-client" >&2
		return 1
	fi
	skip "no $ETCD/$ETCDCTL in PATH (apt-get install etcd-server etcd-client)"
}
