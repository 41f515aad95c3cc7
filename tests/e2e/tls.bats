#!/usr/bin/env bats
# End-to-end tests of TLS: `keel server --tls` (the self-signed pair in
# DATA/tls/) and --tls-cert/--tls-key, what curl and the CLI see with and
# without the CA (--ca, KEEL_CA, the config's "ca"), an agent with --ca,
# `keel up --tls` and the config it writes, and the refusals: plain HTTP
# off loopback, a key that is not the certificate's, missing files.
# Certificates come from keel itself (no certtool or openssl needed).

load helpers

setup() {
	unset KEEL_CONFIG KEEL_SERVER KEEL_TOKEN KEEL_CA KEEL_DATA_DIR
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/xdg
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
	PIDS=()
	LOGS=()
}

teardown() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# sanitizer builds: any report in a log fails the test
	for p in "${LOGS[@]}"; do
		! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$p"
	done
}

# tls_server NAME [FLAGS...]: keel server on a free loopback port, data
# dir $BATS_TEST_TMPDIR/NAME; waits for its https URL, sets URL_<NAME>.
tls_server() {
	local name=$1 data=$BATS_TEST_TMPDIR/$1 log=$BATS_TEST_TMPDIR/$1.log i url=""
	shift
	"$KEEL" server --data-dir "$data" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
	PIDS+=($!)
	LOGS+=("$log")
	for i in $(seq 1 200); do
		url=$(grep -o 'listening on https://[0-9.:]*' "$log" | head -1 | sed 's/listening on //')
		[ -n "$url" ] && break
		kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$log" >&2; return 1; }
		sleep 0.05
	done
	[ -n "$url" ] || { cat "$log" >&2; return 1; }
	printf -v "URL_$name" %s "$url"
}

wait_for() {
	local n=$1 i
	shift
	for i in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

@test "keel server --tls: https with the self-signed pair in DATA/tls; curl --cacert works, plain http fails" {
	tls_server a --tls
	D=$BATS_TEST_TMPDIR/a
	[ -f "$D/tls/ca.crt" ]
	[ "$(stat -c %a "$D/tls/ca.key")" = 600 ]
	run curl -sS --cacert "$D/tls/ca.crt" "$URL_a/healthz"
	assert_success
	assert_output ok
	# the certificate names localhost too
	run curl -sS --cacert "$D/tls/ca.crt" "${URL_a/127.0.0.1/localhost}/healthz"
	assert_success
	# without the CA, curl refuses it
	run curl -sS "$URL_a/healthz"
	assert_failure
	assert_output --partial "self-signed"
	# plain HTTP to the TLS port gets no answer
	run curl -sS "${URL_a/https/http}/healthz"
	assert_failure
	grep -q "tls: made the self-signed certificate $D/tls/ca.crt" "$BATS_TEST_TMPDIR/a.log"
	# DATA/config says https and where the CA is
	[ "$(jq -r .server "$D/config")" = "$URL_a" ]
	[ "$(jq -r .ca "$D/config")" = "$D/tls/ca.crt" ]
}

@test "the CLI verifies with --ca, KEEL_CA or the config's ca; without or with a wrong CA it says why" {
	tls_server a --tls
	tls_server b --tls
	A=$BATS_TEST_TMPDIR/a B=$BATS_TEST_TMPDIR/b
	TOKEN=$(cat "$A/admin.token")
	# the config file's "ca"
	KEEL_CONFIG=$A/config run keel get namespaces
	assert_success
	assert_output --partial default
	# --ca, with no config at all
	run keel --server "$URL_a" --token "$TOKEN" --ca "$A/tls/ca.crt" get namespaces
	assert_success
	assert_output --partial default
	# KEEL_CA
	KEEL_CA=$A/tls/ca.crt run keel --server "$URL_a" --token "$TOKEN" get namespaces
	assert_success
	# --ca beats the config's ca
	KEEL_CONFIG=$A/config run keel --ca "$B/tls/ca.crt" get namespaces
	assert_failure
	# no CA: the system store does not know it
	run keel --server "$URL_a" --token "$TOKEN" get namespaces
	assert_failure
	assert_output --partial "the TLS certificate of keel server at $URL_a does not verify"
	assert_output --partial "--ca FILE"
	# another server's CA
	run keel --server "$URL_a" --token "$TOKEN" --ca "$B/tls/ca.crt" get namespaces
	assert_failure
	assert_output --partial "does not verify with CA file $B/tls/ca.crt"
	# a CA file that is not there
	run keel --server "$URL_a" --token "$TOKEN" --ca "$A/nope.crt" get namespaces
	assert_failure
	assert_output --partial "cannot use CA file $A/nope.crt"
	# http:// to an https server
	run keel --server "${URL_a/https/http}" --token "$TOKEN" get namespaces
	assert_failure
	assert_output --partial "use an https:// URL"
	# watches stream over TLS too
	KEEL_CONFIG=$A/config run timeout 3 "$KEEL" get namespaces --watch
	assert_output --partial default
}

@test "an agent with --ca registers its node and runs a Task; the in-process scheduler binds it over TLS" {
	tls_server a --tls
	A=$BATS_TEST_TMPDIR/a
	"$KEEL" agent --runtime sim --name tls-n1 --server "$URL_a" --token "$(cat "$A/admin.token")" \
		--ca "$A/tls/ca.crt" --data-dir "$BATS_TEST_TMPDIR/agent" --sim-start-delay 100ms \
		--heartbeat-interval 1s >"$BATS_TEST_TMPDIR/agent.log" 2>&1 &
	PIDS+=($!)
	LOGS+=("$BATS_TEST_TMPDIR/agent.log")
	export KEEL_CONFIG=$A/config
	wait_for 100 bash -c "'$KEEL' get nodes tls-n1 2>/dev/null | grep -q ' Ready '"
	cat >"$BATS_TEST_TMPDIR/t.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata: {name: t1}
spec: {image: busybox, command: [sleep, "60"]}
EOF
	run keel apply -f "$BATS_TEST_TMPDIR/t.yaml"
	assert_success
	wait_for 100 bash -c "[ \"\$('$KEEL' get task t1 -o json | jq -r .status.phase)\" = Running ]"
	[ "$(keel get task t1 -o json | jq -r .spec.nodeName)" = tls-n1 ]
	# an agent without the CA (and no config that names it) is told why it
	# cannot register
	run env -u KEEL_CONFIG timeout 20 "$KEEL" agent --runtime sim --name tls-n2 --server "$URL_a" \
		--token "$(cat "$A/admin.token")" --data-dir "$BATS_TEST_TMPDIR/agent2"
	assert_failure
	assert_output --partial "does not verify"
}

@test "keel server --tls-cert/--tls-key serves a given pair; a mismatched or missing one is refused naming the files" {
	tls_server a --tls
	tls_server b --tls
	A=$BATS_TEST_TMPDIR/a B=$BATS_TEST_TMPDIR/b
	cp "$A/tls/ca.crt" "$BATS_TEST_TMPDIR/server.crt"
	cp "$A/tls/ca.key" "$BATS_TEST_TMPDIR/server.key"
	tls_server c --tls-cert "$BATS_TEST_TMPDIR/server.crt" --tls-key "$BATS_TEST_TMPDIR/server.key"
	run curl -sS --cacert "$BATS_TEST_TMPDIR/server.crt" "$URL_c/healthz"
	assert_output ok
	[ "$(jq -r .ca "$BATS_TEST_TMPDIR/c/config")" = "$BATS_TEST_TMPDIR/server.crt" ]
	KEEL_CONFIG=$BATS_TEST_TMPDIR/c/config run keel get namespaces
	assert_success
	# the key of another certificate
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:0 \
		--tls-cert "$A/tls/ca.crt" --tls-key "$B/tls/ca.key"
	[ "$status" -eq 2 ]
	assert_output --partial "--tls-key $B/tls/ca.key does not match the certificate in --tls-cert $A/tls/ca.crt"
	# a key given as the certificate
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:0 \
		--tls-cert "$A/tls/ca.key" --tls-key "$A/tls/ca.key"
	[ "$status" -eq 2 ]
	assert_output --partial "--tls-cert $A/tls/ca.key: not a PEM certificate"
	# a file that is not there
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:0 \
		--tls-cert "$BATS_TEST_TMPDIR/nope.crt" --tls-key "$A/tls/ca.key"
	[ "$status" -eq 2 ]
	assert_output --partial "--tls-cert: "
	assert_output --partial "nope.crt"
	# one without the other
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --tls-cert "$A/tls/ca.crt"
	[ "$status" -eq 2 ]
	assert_output --partial "--tls-cert $A/tls/ca.crt needs --tls-key FILE"
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --tls-key "$A/tls/ca.key"
	[ "$status" -eq 2 ]
	assert_output --partial "needs --tls-cert FILE"
	# nothing was started or written for the refused ones
	[ ! -e "$BATS_TEST_TMPDIR/d/data.mdb" ]
}

@test "plain HTTP off loopback is refused unless --insecure-listen; with TLS it is served" {
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 0.0.0.0:0
	[ "$status" -eq 2 ]
	assert_output --partial "--listen 0.0.0.0:0 is not a loopback address"
	assert_output --partial "--tls-cert FILE --tls-key FILE"
	assert_output --partial "--insecure-listen"
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen '[::]:0'
	[ "$status" -eq 2 ]
	run "$KEEL" up --data-dir "$BATS_TEST_TMPDIR/u" --listen 0.0.0.0:0 --runtime process
	[ "$status" -eq 2 ]
	assert_output --partial "is not a loopback address"
	[ ! -e "$BATS_TEST_TMPDIR/d/data.mdb" ] && [ ! -e "$BATS_TEST_TMPDIR/u/data.mdb" ]
	# --insecure-listen: plain HTTP as asked
	log=$BATS_TEST_TMPDIR/insecure.log
	"$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 0.0.0.0:0 --insecure-listen >"$log" 2>&1 &
	PIDS+=($!)
	LOGS+=("$log")
	wait_for 100 grep -q 'listening on http://127.0.0.1:' "$log"
	url=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's/listening on //')
	run curl -sS "$url/healthz"
	assert_output ok
	# TLS on 0.0.0.0 needs no --insecure-listen
	tls_server e --tls --listen 0.0.0.0:0
	run curl -sS --cacert "$BATS_TEST_TMPDIR/e/tls/ca.crt" "$URL_e/healthz"
	assert_output ok
}

# up_tls DATA LOG: keel up --tls in the background, until its node is Ready.
up_tls() {
	"$KEEL" up --tls --data-dir "$1" --listen 127.0.0.1:0 --runtime process \
		--name "tls-up-$BATS_TEST_NUMBER" >"$2" 2>&1 &
	UP_PID=$!
	PIDS+=($UP_PID)
	LOGS+=("$2")
	wait_for 200 bash -c "'$KEEL' get nodes 2>/dev/null | grep -q ' Ready '" || { cat "$2" >&2; return 1; }
}

@test "keel up --tls: its config has the https URL and ca, plain keel get uses it; a second start reuses the certificate" {
	U=$BATS_TEST_TMPDIR/up
	up_tls "$U" "$BATS_TEST_TMPDIR/up1.log"
	grep -q "keel up: API server listening on https://127.0.0.1:" "$BATS_TEST_TMPDIR/up1.log"
	grep -q "tls: made the self-signed certificate $U/tls/ca.crt" "$BATS_TEST_TMPDIR/up1.log"
	CFG=$XDG_CONFIG_HOME/keel/config
	[[ "$(jq -r .server "$CFG")" == https://127.0.0.1:* ]]
	[ "$(jq -r .ca "$CFG")" = "$U/tls/ca.crt" ]
	[ "$(jq -r .ca "$U/config")" = "$U/tls/ca.crt" ]
	[ "$(stat -c %a "$U/tls/ca.key")" = 600 ]
	run keel get nodes
	assert_success
	assert_output --partial "tls-up-$BATS_TEST_NUMBER"
	assert_output --partial " Ready "
	# logs stream over TLS (CLI -> server), relayed from the agent
	cat >"$BATS_TEST_TMPDIR/t.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata: {name: hello-tls}
spec: {image: busybox, command: [sh, -c, "echo hello over tls"], restartPolicy: Never}
EOF
	run keel apply -f "$BATS_TEST_TMPDIR/t.yaml" --wait --timeout 30s
	assert_success
	run keel logs hello-tls
	assert_success
	assert_output "hello over tls"
	cp "$U/tls/ca.crt" "$BATS_TEST_TMPDIR/first.crt"
	kill "$UP_PID"
	wait "$UP_PID" || true
	up_tls "$U" "$BATS_TEST_TMPDIR/up2.log"
	cmp "$U/tls/ca.crt" "$BATS_TEST_TMPDIR/first.crt"
	grep -q "tls: serving the self-signed certificate $U/tls/ca.crt" "$BATS_TEST_TMPDIR/up2.log"
	run keel get nodes
	assert_success
}

@test "keel server --tls: a new listen host makes a new CA, and the server warns that clients must take the new ca.crt" {
	D=$BATS_TEST_TMPDIR/w
	tls_server w --tls
	grep -q "info  tls: made the self-signed certificate $D/tls/ca.crt" "$BATS_TEST_TMPDIR/w.log"
	cp "$D/tls/ca.crt" "$BATS_TEST_TMPDIR/old-ca.crt"
	kill "${PIDS[-1]}"
	wait "${PIDS[-1]}" 2>/dev/null || true
	tls_server w --tls --listen 127.0.0.2:0
	run grep -F "warn  tls: made a new self-signed certificate $D/tls/ca.crt ($D/tls/ca.crt: the certificate does not name 127.0.0.2): clients holding the old ca.crt must take the new one: --ca $D/tls/ca.crt" "$BATS_TEST_TMPDIR/w.log"
	assert_success
	# which is true: the old CA no longer verifies it, the new one does
	run curl -sS --cacert "$BATS_TEST_TMPDIR/old-ca.crt" "$URL_w/healthz"
	assert_failure
	run curl -sS --cacert "$D/tls/ca.crt" "$URL_w/healthz"
	assert_output ok
}
