# Shared helpers for keel's bats tests: a real `keel server` on a free
# loopback port with its LMDB store in the test's temp directory, or with
# KEEL_TEST_STORE=etcd on the etcd at $KEEL_TEST_ETCD_ENDPOINTS, under a key
# prefix of its own per data directory (tests/e2e/etcd-run starts that etcd;
# etcd.bash starts clusters for tests that need their own).
#   load helpers
#   setup()    { keel_server_start; }
#   teardown() { keel_server_stop; }
# After start: $KEEL_URL, $KEEL_DATA, $KEEL_CONFIG (exported, so plain `keel`
# commands reach this server), $SERVER_PID, $SERVER_LOG.

load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash
load etcd

: "${KEEL:?set KEEL to the keel binary (ctest does)}"

keel() { "$KEEL" "$@"; }

# keel_server_start [FLAGS...]: starts a server (data dir $KEEL_DATA, default
# $BATS_TEST_TMPDIR/data) and waits until /healthz answers.
keel_server_start() {
	KEEL_DATA=${KEEL_DATA:-$BATS_TEST_TMPDIR/data}
	SERVER_LOG=$BATS_TEST_TMPDIR/server.log
	local store=()
	keel_store_flags store "$@" || return 1
	"$KEEL" server --data-dir "$KEEL_DATA" --listen 127.0.0.1:0 "${store[@]}" "$@" >>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	local i url=""
	for i in $(seq 1 200); do
		url=$(grep -o 'listening on http://[0-9.:]*' "$SERVER_LOG" | tail -1 | sed 's/listening on //')
		if [ -n "$url" ] && curl -sf "$url/healthz" >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			cat "$SERVER_LOG" >&2
			return 1
		fi
		sleep 0.05
	done
	[ -n "$url" ] || { cat "$SERVER_LOG" >&2; return 1; }
	export KEEL_URL=$url KEEL_DATA
	export KEEL_CONFIG=$KEEL_DATA/config
	# with --token-file there is no admin.token: the caller sets KEEL_TOKEN_VALUE
	if [ -f "$KEEL_DATA/admin.token" ]; then
		KEEL_TOKEN_VALUE=$(cat "$KEEL_DATA/admin.token")
	fi
}

# keel_store_flags VAR [FLAGS...]: fills the array VAR with the --store
# flags of the backend under test: none for LMDB (or when FLAGS choose a
# --store themselves); with KEEL_TEST_STORE=etcd, the etcd endpoints and a
# prefix kept in $KEEL_DATA/test-etcd-prefix, so that a restart on the same
# data directory finds its objects and every other data directory is a
# fresh store.
keel_store_flags() {
	local -n out=$1
	shift
	out=()
	local a
	for a in "$@"; do
		case $a in --store | --store=*) return 0 ;; esac
	done
	case ${KEEL_TEST_STORE:-lmdb} in
	lmdb) return 0 ;;
	etcd) ;;
	*) echo "KEEL_TEST_STORE=$KEEL_TEST_STORE: want lmdb or etcd" >&2; return 1 ;;
	esac
	if [ -z "${KEEL_TEST_ETCD_ENDPOINTS:-}" ]; then
		echo "KEEL_TEST_STORE=etcd needs KEEL_TEST_ETCD_ENDPOINTS (run the test through tests/e2e/etcd-run)" >&2
		return 1
	fi
	mkdir -p "$KEEL_DATA"
	local pf=$KEEL_DATA/test-etcd-prefix
	[ -s "$pf" ] || echo "/keel-test/$(basename "$BATS_TEST_FILENAME" .bats)-$BATS_TEST_NUMBER-$$-$RANDOM/" >"$pf"
	out=(--store etcd --etcd-endpoints "$KEEL_TEST_ETCD_ENDPOINTS" --etcd-prefix "$(cat "$pf")")
}

# on_lmdb: true when the backend under test is LMDB (for the checks of a
# test that hold on LMDB only; on etcd the list's revision is etcd's global
# one, which a server's start moves, and each write is its own etcd txn).
on_lmdb() { [ "${KEEL_TEST_STORE:-lmdb}" = lmdb ]; }

# lmdb_only REASON: skips the rest of the test on another backend.
lmdb_only() {
	[ "${KEEL_TEST_STORE:-lmdb}" = lmdb ] || skip "LMDB only: $*"
}

# keel_server_stop [SIGNAL]: stops the server (TERM by default) and waits.
keel_server_stop() {
	local sig=${1:-TERM}
	if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -"$sig" "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=""
}

# free_port: a loopback port nothing listens on now. For a server that must
# come back on the same port after a kill (its agents know its URL):
#   keel_server_start --listen "127.0.0.1:$(free_port)"   (the later --listen wins)
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# api METHOD PATH [curl args...]: an authenticated request; prints the body.
api() {
	local method=$1 path=$2
	shift 2
	curl -s -X "$method" -H "Authorization: Bearer $KEEL_TOKEN_VALUE" \
		-H 'Content-Type: application/json' "$@" "$KEEL_URL$path"
}
