#!/usr/bin/env bats
# Minted tokens on several servers (issue 9): two keel servers on one etcd,
# each with its own data directory and so its own admin (DATA/admin.token;
# a --token-file would forbid minting). A token minted through A is in the
# store (tokens//NAME, its hash), so B accepts it at once; a revoke through
# B reaches A through the store's watch: A refuses the token and ends the
# watch streams of that user.

load helpers

setup() {
	needs_etcd
	SRV_PIDS=()
	WATCH_PID=""
	etcd_cluster_start 1
	unset KEEL_CONFIG KEEL_TOKEN
}

teardown() {
	local p
	for p in "$WATCH_PID" "${SRV_PIDS[@]}"; do
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	done
	for p in "$WATCH_PID" "${SRV_PIDS[@]}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null
	done
	etcd_cluster_stop
	! grep -sE "AddressSanitizer|LeakSanitizer|runtime error:" "$BATS_TEST_TMPDIR"/*.log
}

# srv NAME: a keel server on the etcd; sets URL_NAME and ADMIN_NAME (its
# own DATA/admin.token).
srv() {
	local port
	port=$(free_port)
	"$KEEL" server --data-dir "$BATS_TEST_TMPDIR/$1" --listen "127.0.0.1:$port" \
		--controllers=none --store etcd --etcd-endpoints "$ETCD_ENDPOINTS" \
		>>"$BATS_TEST_TMPDIR/server-$1.log" 2>&1 &
	SRV_PIDS+=($!)
	local i
	for i in $(seq 1 200); do
		if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
			eval "URL_$1=http://127.0.0.1:$port"
			eval "ADMIN_$1=$(cat "$BATS_TEST_TMPDIR/$1/admin.token")"
			return 0
		fi
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	cat "$BATS_TEST_TMPDIR/server-$1.log" >&2
	return 1
}

# req URL TOKEN METHOD PATH [curl args]: prints "CODE BODY".
req() {
	local url=$1 tok=$2 method=$3 path=$4
	shift 4
	curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -X "$method" \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' "$@" "$url$path"
	echo -n " "
	cat "$BATS_TEST_TMPDIR/body"
}

V1=/apis/keel/v1
T=$V1/namespaces/default/tasks

@test "tokens on etcd: minted on A works on B at once; revoked on B, A refuses it and ends its watch" {
	srv a
	srv b
	[ "$ADMIN_a" != "$ADMIN_b" ]
	# a node token and a viewer minted through A
	run req "$URL_a" "$ADMIN_a" POST $V1/tokens -d '{"metadata":{"name":"n1"},"spec":{"role":"node"}}'
	[ "${output%% *}" = 201 ]
	ntok=$(jq -r .status.token "$BATS_TEST_TMPDIR/body")
	run req "$URL_a" "$ADMIN_a" POST $V1/tokens -d '{"metadata":{"name":"alice"},"spec":{"role":"viewer"}}'
	[ "${output%% *}" = 201 ]
	vtok=$(jq -r .status.token "$BATS_TEST_TMPDIR/body")
	# B: the node renews its lease through it, the viewer reads (no retry:
	# B had it from the store's watch before A answered, or within ms)
	for i in $(seq 1 20); do
		run req "$URL_b" "$ntok" PUT $V1/leases/n1 -d '{}'
		[ "${output%% *}" = 200 ] && break
		sleep 0.05
	done
	[ "${output%% *}" = 200 ]
	[ "$i" -le 2 ]
	run req "$URL_b" "$vtok" GET $T
	[ "${output%% *}" = 200 ]
	# one name across the servers: B says 409 for a name minted on A
	run req "$URL_b" "$ADMIN_b" POST $V1/tokens -d '{"metadata":{"name":"alice"},"spec":{"role":"admin"}}'
	[ "${output%% *}" = 409 ]
	[[ "$output" == *'tokens \"alice\" already exists'* ]]
	run req "$URL_b" "$ADMIN_b" GET $V1/tokens
	echo "$output" | cut -d' ' -f2- | jq -e '[.items[] | select(.status.source == "minted") | .metadata.name] | sort == ["alice", "n1"]'
	# the stored hashes are no API object: not in the list, no kind route
	[[ "$output" != *sha256* && "$output" != *tokenHash* ]]
	run req "$URL_b" "$ADMIN_b" GET $V1/namespaces/default/tokens
	[ "${output%% *}" = 404 ]
	# the secret is nowhere in etcd, its hash is
	! ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get --prefix / | grep -q "$vtok"
	ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get --prefix / |
		grep -q "sha256:$(printf %s "$vtok" | sha256sum | cut -d' ' -f1)"
	# alice watches on A; revoked through B
	out=$BATS_TEST_TMPDIR/watch-alice
	curl -sN -H "Authorization: Bearer $vtok" --max-time 30 "$URL_a$T?watch=1&timeoutSeconds=25" >"$out" &
	WATCH_PID=$!
	watchers() { curl -s -H "Authorization: Bearer $ADMIN_a" "$URL_a/metrics" | awk '/^keel_watchers /{print $2}'; }
	for i in $(seq 1 50); do [ "$(watchers)" = 1 ] && break; sleep 0.1; done
	[ "$(watchers)" = 1 ]
	run req "$URL_b" "$ADMIN_b" DELETE $V1/tokens/alice
	[ "${output%% *}" = 200 ]
	run req "$URL_b" "$ADMIN_b" DELETE $V1/tokens/n1
	[ "${output%% *}" = 200 ]
	start=$SECONDS
	wait "$WATCH_PID" # curl's status 0: A ended the stream
	WATCH_PID=""
	[ $((SECONDS - start)) -lt 5 ]
	tail -1 "$out" | jq -e '.type == "ERROR" and .object.code == 401 and
		.object.message == "the token of this watch was revoked"'
	run req "$URL_a" "$vtok" GET $T
	[ "${output%% *}" = 401 ]
	run req "$URL_a" "$ntok" PUT $V1/leases/n1 -d '{}'
	[ "${output%% *}" = 401 ]
	grep -q 'token "alice" was revoked (seen in the store)' "$BATS_TEST_TMPDIR/server-a.log"
	# A knows nothing of them any more: a revoke there is 404
	run req "$URL_a" "$ADMIN_a" DELETE $V1/tokens/alice
	[ "${output%% *}" = 404 ]
}

@test "tokens on etcd: a server started later, or restarted, has every minted token; a revoked one stays revoked" {
	srv a
	run req "$URL_a" "$ADMIN_a" POST $V1/tokens -d '{"metadata":{"name":"bob"},"spec":{"role":"viewer"}}'
	[ "${output%% *}" = 201 ]
	btok=$(jq -r .status.token "$BATS_TEST_TMPDIR/body")
	run req "$URL_a" "$ADMIN_a" POST $V1/tokens -d '{"metadata":{"name":"carol"},"spec":{"role":"viewer"}}'
	[ "${output%% *}" = 201 ]
	ctok=$(jq -r .status.token "$BATS_TEST_TMPDIR/body")
	run req "$URL_a" "$ADMIN_a" DELETE $V1/tokens/carol
	[ "${output%% *}" = 200 ]
	srv b
	run req "$URL_b" "$btok" GET $T
	[ "${output%% *}" = 200 ]
	run req "$URL_b" "$ctok" GET $T
	[ "${output%% *}" = 401 ]
}
