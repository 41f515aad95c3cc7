#!/usr/bin/env bats
# The server's hard limits end to end: each one tripped over the HTTP API
# with small flag values, the Status a client gets (code, reason, a message
# naming the limit), the counter on /metrics, and the server answering
# others during and after. (api.bats has the default 3 MiB body and the
# --max-watchers total.)

bats_require_minimum_version 1.5.0
load helpers

NS=/apis/keel/v1/namespaces/default

setup() {
	BODY=$BATS_TEST_TMPDIR/body
	HDRS=$BATS_TEST_TMPDIR/headers
}
teardown() {
	keel_server_stop
	! grep -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"
}

# req METHOD PATH [curl args...]: prints the HTTP code; body in $BODY,
# response headers in $HDRS. A Content-Type in the args replaces the
# default application/json; $TOKEN replaces the admin token.
req() {
	local method=$1 path=$2 ct='Content-Type: application/json' a
	shift 2
	for a in "$@"; do
		case $a in Content-Type:*) ct=$a ;; esac
	done
	curl -s -X "$method" -H "Authorization: Bearer ${TOKEN:-$KEEL_TOKEN_VALUE}" \
		-H "$ct" -o "$BODY" -D "$HDRS" -w '%{http_code}' "$@" "$KEEL_URL$path"
}
body() { jq -r "$@" "$BODY"; }
# rejections LIMIT: keel_limit_rejections_total{limit="LIMIT"}
rejections() {
	api GET /metrics | awk -v l="keel_limit_rejections_total{limit=\"$1\"}" '$1 == l {print $2}'
}
task() { # task NAME [METADATA-EXTRA-JSON] [SPEC-EXTRA-JSON]
	printf '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"%s"%s},"spec":{"image":"b"%s}}' \
		"$1" "${2:-}" "${3:-}"
}
# healthy: /healthz and an authenticated list both answer within 2 s.
healthy() {
	[ "$(curl -s -m 2 "$KEEL_URL/healthz")" = ok ] &&
		[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEEL_TOKEN_VALUE" "$KEEL_URL$NS/tasks")" = 200 ]
}

@test "--max-body and --max-object: 413 naming the flag, counted" {
	keel_server_start --controllers=none --max-body 10Ki --max-object 2Ki
	head -c 20000 /dev/zero | tr '\0' ' ' >"$BATS_TEST_TMPDIR/big"
	[ "$(req POST "$NS/tasks" --data-binary @"$BATS_TEST_TMPDIR/big")" = 413 ]
	[ "$(body .reason)" = RequestEntityTooLarge ]
	[ "$(body .message)" = "request body too large: Content-Length 20000 is over the limit of 10Ki (--max-body)" ]
	[ "$(req POST "$NS/tasks" -H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/big")" = 413 ]
	[ "$(body .message)" = "request body too large: over the limit of 10Ki (--max-body)" ]
	[ "$(rejections body)" = 2 ]
	# under the body limit, over the object limit
	args=$(head -c 3000 /dev/zero | tr '\0' a)
	[ "$(req POST "$NS/tasks" -d "$(task big '' ",\"args\":[\"$args\"]")")" = 413 ]
	[[ "$(body .message)" == "object is too large: "*" bytes serialised, over the limit of 2Ki (--max-object)" ]]
	[ "$(rejections object)" = 1 ]
	[ "$(req POST "$NS/tasks" -d "$(task small)")" = 201 ]
	[ "$(rejections object)" = 1 ]
}

@test "labels (64) and annotations (256 KiB): 422 on the map's field, counted, and in keel lint with file:line" {
	keel_server_start --controllers=none
	labels=$(seq 1 65 | awk '{printf "%s\"l%d\":\"v\"", (NR > 1 ? "," : ""), $1}')
	[ "$(req POST "$NS/tasks" -d "$(task many ",\"labels\":{$labels}")")" = 422 ]
	[ "$(body .reason)" = Invalid ]
	[ "$(body '.details.causes[0].field')" = metadata.labels ]
	[ "$(body '.details.causes[0].message')" = "Too many: 65: must have at most 64 labels" ]
	[ "$(rejections labels)" = 1 ]
	note=$(head -c 270000 /dev/zero | tr '\0' n)
	printf '%s' "$(task noted ",\"annotations\":{\"note\":\"$note\"}")" >"$BATS_TEST_TMPDIR/noted"
	[ "$(req POST "$NS/tasks" --data-binary @"$BATS_TEST_TMPDIR/noted")" = 422 ]
	[ "$(body '.details.causes[0].field')" = metadata.annotations ]
	[ "$(body '.details.causes[0].message')" = "Too long: must have at most 262144 bytes (keys and values), got 270004" ]
	[ "$(rejections annotations)" = 1 ]
	# a bad label key is a syntax error, not the limit
	[ "$(req POST "$NS/tasks" -d "$(task bad ',"labels":{"-x":"v"}')")" = 422 ]
	[ "$(rejections labels)" = 1 ]
	# the same limits offline, with the line of the map
	{
		printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: many\n  labels:\n'
		seq 1 65 | sed 's/.*/    l&: v/'
		printf 'spec:\n  image: b\n'
	} >"$BATS_TEST_TMPDIR/labels.yaml"
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: noted\n  annotations:\n    note: %s\nspec:\n  image: b\n' "$note" >"$BATS_TEST_TMPDIR/notes.yaml"
	run keel lint -f "$BATS_TEST_TMPDIR/labels.yaml" -f "$BATS_TEST_TMPDIR/notes.yaml"
	assert_failure 1
	assert_line "$BATS_TEST_TMPDIR/labels.yaml:5:3: metadata.labels: Too many: 65: must have at most 64 labels"
	assert_line "$BATS_TEST_TMPDIR/notes.yaml:5:3: metadata.annotations: Too long: must have at most 262144 bytes (keys and values), got 270004"
}

@test "--max-watchers-per-client: 429 naming the client (the token's user); other users still watch" {
	printf 'tok-alice-0123456789,alice\ntok-bob-0123456789,bob\n' >"$BATS_TEST_TMPDIR/tokens"
	# (no DATA/admin.token to read: the helper's last step fails)
	keel_server_start --controllers=none --token-file "$BATS_TEST_TMPDIR/tokens" --max-watchers-per-client 2 || true
	KEEL_TOKEN_VALUE=tok-bob-0123456789
	healthy
	pids=()
	for i in 1 2; do
		curl -sN -H "Authorization: Bearer tok-alice-0123456789" --max-time 10 "$KEEL_URL$NS/tasks?watch=1&timeoutSeconds=4" >/dev/null &
		pids+=($!)
	done
	watchers_are() { [ "$(api GET /metrics | awk '/^keel_watchers /{print $2}')" = "$1" ]; }
	for i in $(seq 1 50); do watchers_are 2 && break; sleep 0.1; done
	watchers_are 2
	[ "$(TOKEN=tok-alice-0123456789 req GET "$NS/tasks?watch=1&timeoutSeconds=1")" = 429 ]
	[ "$(body .reason)" = TooManyRequests ]
	[ "$(body .message)" = 'too many watchers for client "alice" (2 open, --max-watchers-per-client 2); retry later' ]
	[ "$(rejections watches_per_client)" = 1 ]
	# bob is another client; alice may still list
	[ "$(TOKEN=tok-bob-0123456789 req GET "$NS/tasks?watch=1&timeoutSeconds=1")" = 200 ]
	[ "$(TOKEN=tok-alice-0123456789 req GET "$NS/tasks")" = 200 ]
	wait "${pids[@]}"
	[ "$(TOKEN=tok-alice-0123456789 req GET "$NS/tasks?watch=1&timeoutSeconds=1")" = 200 ]
	[ "$(rejections watches_per_client)" = 1 ]
}

# hold N SECONDS: opens N idle connections for SECONDS; prints the PID.
hold() {
	python3 -c '
import socket, sys, time
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
socks = [socket.create_connection((host, int(port))) for _ in range(int(sys.argv[2]))]
print("open", flush=True)
time.sleep(float(sys.argv[3]))' "$KEEL_URL" "$1" "$2" >"$BATS_TEST_TMPDIR/hold" &
	HOLD=$!
	for i in $(seq 1 50); do grep -q open "$BATS_TEST_TMPDIR/hold" && return; sleep 0.1; done
}

@test "--max-connections: past it a new connection gets 503 and Connection: close, counted" {
	keel_server_start --controllers=none --max-connections 3
	conns() { api GET /metrics | awk '/^keel_http_connections /{print $2}'; }
	hold 2 6
	conns_are() { [ "$(conns)" = "$1" ]; }
	for i in $(seq 1 50); do conns_are 3 && break; sleep 0.1; done
	conns_are 3 # the two held and the one asking
	hold 1 6
	for i in $(seq 1 50); do [ "$(req GET "$NS/tasks")" = 503 ] && break; sleep 0.1; done
	[ "$(body .reason)" = ServiceUnavailable ]
	[ "$(body .message)" = "too many connections (--max-connections 3); retry later" ]
	grep -qi '^Connection: close' "$HDRS"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$KEEL_URL/healthz")" = 503 ]
	kill "$HOLD"
	wait "$HOLD" || true
	# one slot again: answered, and the count is there
	[ "$(req GET "$NS/tasks")" = 200 ]
	[ "$(rejections connections)" = 2 ]
}

@test "--max-header-bytes: 431 Status; headers past MHD's pool get its own 431, counted too" {
	keel_server_start --controllers=none --max-header-bytes 4Ki
	[ "$(req GET "$NS/tasks" -H "X-Pad: $(head -c 6000 /dev/zero | tr '\0' a)")" = 431 ]
	[ "$(body .reason)" = RequestHeaderFieldsTooLarge ]
	[[ "$(body .message)" == "request headers too large: "*" bytes, over the limit of 4Ki (--max-header-bytes)" ]]
	printf 'X-Pad: %s' "$(head -c 600000 /dev/zero | tr '\0' a)" >"$BATS_TEST_TMPDIR/hdr"
	[ "$(req GET "$NS/tasks" -H @"$BATS_TEST_TMPDIR/hdr")" = 431 ]
	[ "$(rejections headers)" = 2 ]
	[ "$(req GET "$NS/tasks" -H "X-Pad: $(head -c 2000 /dev/zero | tr '\0' a)")" = 200 ]
	healthy
}

@test "--request-timeout: slowloris clients get 408 and are closed; others and long watches are not held up" {
	keel_server_start --controllers=none --request-timeout 2s --idle-timeout 3s
	slow=$KEEL_SRC/tests/e2e/slowloris.py
	python3 "$slow" "$KEEL_URL" headers "$KEEL_TOKEN_VALUE" 0.5 >"$BATS_TEST_TMPDIR/slow-h" &
	ph=$!
	python3 "$slow" "$KEEL_URL" body "$KEEL_TOKEN_VALUE" 0.5 >"$BATS_TEST_TMPDIR/slow-b" &
	pb=$!
	python3 "$slow" "$KEEL_URL" keepalive "$KEEL_TOKEN_VALUE" 0.5 >"$BATS_TEST_TMPDIR/slow-k" &
	pk=$!
	# a watch lives past the deadline: only receiving the request counts
	start=$SECONDS
	curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 20 "$KEEL_URL$NS/tasks?watch=1&timeoutSeconds=5" >/dev/null &
	pw=$!
	sleep 1
	healthy
	wait "$ph"
	wait "$pb"
	for f in slow-h slow-b; do
		part=headers
		[ "$f" = slow-b ] && part=body # the headers were in: the 408 does not say "not received"
		run cat "$BATS_TEST_TMPDIR/$f"
		assert_line --index 0 --regexp '^closed after [0-9.]+s: HTTP/1.1 408 Request Timeout$'
		secs=$(sed -n '1s/closed after \([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/$f")
		[ "$secs" -ge 2 ] && [ "$secs" -lt 5 ]
		[ "$(sed -n 2p "$BATS_TEST_TMPDIR/$f" | jq -r .message)" = "request $part not read in full within the request timeout (--request-timeout 2s): the client sent it too slowly or the server was too busy to read it; closing the connection" ]
	done
	# after a response the connection is a kept-alive one: it lives at most
	# --idle-timeout without a completed request, and is closed without a
	# 408 that a client could take for its next request's answer, and not
	# counted (a client's idle connection is not a rejection)
	wait "$pk"
	run cat "$BATS_TEST_TMPDIR/slow-k"
	assert_output --regexp '^closed after [345]\.[0-9]s: \(none\)$'
	[ "$(rejections request_time)" = 2 ]
	healthy
	wait "$pw" # curl's status: 0 only if the stream ended as the server meant it to
	[ $((SECONDS - start)) -ge 4 ]
	[ "$(rejections request_time)" = 2 ]
}

@test "YAML limits (alias bomb, depth, document size): 413 in apply, counted; file:line in keel lint" {
	keel_server_start --controllers=none
	{
		printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: lol}\nspec:\n  image: b\n'
		printf 'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n'
		for i in 1 2 3 4 5 6 7 8; do
			printf 'a%d: &a%d [%s]\n' $i $i "$(printf '*a%d, ' $((i - 1)){,,,,,,,,,} | sed 's/, $//')"
		done
	} >"$BATS_TEST_TMPDIR/lol.yaml"
	deep=$(printf '[%.0s' $(seq 1 150))$(printf ']%.0s' $(seq 1 150))
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: deep}\nspec:\n  image: b\n  x: %s\n' "$deep" >"$BATS_TEST_TMPDIR/deep.yaml"
	apply() { req PATCH "$NS/tasks/$1?fieldManager=t" -H 'Content-Type: application/apply-patch+yaml' --data-binary @"$BATS_TEST_TMPDIR/$1.yaml"; }
	[ "$(apply lol)" = 413 ]
	[ "$(body .reason)" = RequestEntityTooLarge ]
	[ "$(body .message)" = "request body:11:45: more than 1000000 nodes after expanding aliases (an alias bomb?)" ]
	[ "$(apply deep)" = 413 ]
	[ "$(body .message)" = "request body:6:104: nesting deeper than 100 levels" ]
	[ "$(rejections yaml)" = 2 ]
	healthy
	# offline: the same messages with the file's name; and a file over 3 MiB
	{
		printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: big}\nspec:\n  image: b\n  args:\n'
		yes '  - aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' | head -n 45000
	} >"$BATS_TEST_TMPDIR/big.yaml"
	run keel lint -f "$BATS_TEST_TMPDIR/lol.yaml" -f "$BATS_TEST_TMPDIR/deep.yaml" -f "$BATS_TEST_TMPDIR/big.yaml"
	assert_failure 1
	assert_line "$BATS_TEST_TMPDIR/lol.yaml:11:45: more than 1000000 nodes after expanding aliases (an alias bomb?)"
	assert_line "$BATS_TEST_TMPDIR/deep.yaml:6:104: nesting deeper than 100 levels"
	# (a file, hence a document, over 3 MiB is refused before it is parsed)
	assert_line --regexp "^error: $BATS_TEST_TMPDIR/big.yaml: larger than the 3 MiB limit of a manifest file \([0-9]+ bytes\); not read$"
}

deploy_json() { # deploy_json NAME REPLICAS
	printf '{"apiVersion":"keel/v1","kind":"Deployment","metadata":{"name":"%s"},"spec":{"replicas":%s,"template":{"metadata":{"labels":{"app":"%s"}},"spec":{"image":"b"}}}}' \
		"$1" "$2" "$1"
}
# tasks_of APP: how many Tasks carry app=APP
tasks_of() { api GET "$NS/tasks?labelSelector=app%3D$1" | jq '.items | length'; }

@test "in-process controllers have their own identity: a token file with no admin line in clear still runs them" {
	# the only admin is a hashed line: there is no admin token to hand the controllers
	h=$(printf %s tok-ops-0123456789 | sha256sum | cut -d' ' -f1)
	printf 'sha256:%s,ops,admin\n' "$h" >"$BATS_TEST_TMPDIR/tokens"
	keel_server_start --token-file "$BATS_TEST_TMPDIR/tokens" || true
	KEEL_TOKEN_VALUE=tok-ops-0123456789
	healthy
	[ "$(req POST "$NS/deployments" -d "$(deploy_json web 2)")" = 201 ]
	for i in $(seq 1 100); do [ "$(tasks_of web)" = 2 ] && break; sleep 0.1; done
	[ "$(tasks_of web)" = 2 ]
	# the controllers' token is in memory only: not in the data dir, not in DATA/config
	run ! grep -rl 'system:controllers' "$KEEL_DATA"
	[ "$(jq -r '.token // ""' "$KEEL_DATA/config")" = "" ]
}

@test "in-process controllers are exempt from --max-watchers-per-client: an admin using up the quota does not starve them" {
	keel_server_start --max-watchers-per-client 2
	pids=()
	for i in 1 2; do
		curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 15 "$KEEL_URL$NS/tasks?watch=1&timeoutSeconds=8" >/dev/null &
		pids+=($!)
	done
	# the admin's own third watch is refused
	for i in $(seq 1 50); do [ "$(req GET "$NS/tasks?watch=1&timeoutSeconds=1")" = 429 ] && break; sleep 0.1; done
	[ "$(body .message)" = 'too many watchers for client "admin" (2 open, --max-watchers-per-client 2); retry later' ]
	[ "$(req POST "$NS/deployments" -d "$(deploy_json web 2)")" = 201 ]
	for i in $(seq 1 100); do [ "$(tasks_of web)" = 2 ] && break; sleep 0.1; done
	[ "$(tasks_of web)" = 2 ]
	# the only refusals are the admin's own, none of the controllers'
	[ "$(rejections watches_per_client)" = 1 ]
	# their watches count in the total
	[ "$(api GET /metrics | awk '/^keel_watchers /{print $2}')" -gt 2 ]
	kill "${pids[@]}" 2>/dev/null || true
}

@test "--max-watchers 0 is refused: every watch would be" {
	run "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:0 --controllers=none --max-watchers 0
	[ "$status" = 2 ]
	assert_output --partial 'max-watchers'
	assert_output --partial '1..1000000'
}

# early HEADERS...: sends a POST's request line and headers (CRLF-joined
# args) and no body; prints the response's status code and whether it said
# Connection: close, or "none" when nothing came within 3 s.
early() {
	python3 -c '
import socket, sys
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.settimeout(3)
s.sendall(("POST /apis/keel/v1/namespaces/default/tasks HTTP/1.1\r\nHost: x\r\n" +
           "".join(h + "\r\n" for h in sys.argv[2:]) + "\r\n").encode())
data = b""
try:
    while b"\r\n\r\n" not in data:
        b = s.recv(4096)
        if not b:
            break
        data += b
except socket.timeout:
    pass
if not data:
    print("none")
else:
    head = data.split(b"\r\n\r\n")[0].decode()
    print(head.split("\r\n")[0].split(" ")[1], "close" if "connection: close" in head.lower() else "keep")
' "$KEEL_URL" "$@"
}

@test "refusals decided from the headers are sent at once, with Connection: close, before any body" {
	keel_server_start --controllers=none --max-body 4Ki
	# no 100 Continue for a body that is too large: the 413 at once
	run early "Authorization: Bearer $KEEL_TOKEN_VALUE" 'Content-Type: application/json' \
		'Content-Length: 10000000' 'Expect: 100-continue'
	assert_output '413 close'
	# a bad token: 401 without waiting for the body, Expect or not
	run early 'Authorization: Bearer nope' 'Content-Type: application/json' 'Content-Length: 100'
	assert_output '401 close'
	run early 'Authorization: Bearer nope' 'Content-Length: 100' 'Expect: 100-continue'
	assert_output '401 close'
	[ "$(rejections body)" = 1 ]
	# curl uploading 10 MB gets the 413 at once and sends (almost) none of it
	head -c 10000000 /dev/zero >"$BATS_TEST_TMPDIR/10mb"
	out=$(curl -s -m 20 -o "$BODY" -w '%{http_code} %{size_upload} %{time_total}' -X POST \
		-H "Authorization: Bearer $KEEL_TOKEN_VALUE" -H 'Content-Type: application/json' \
		--data-binary @"$BATS_TEST_TMPDIR/10mb" "$KEEL_URL$NS/tasks")
	read -r code up secs <<<"$out"
	echo "$out" >&2
	[ "$code" = 413 ]
	[ "$(body .message)" = "request body too large: Content-Length 10000000 is over the limit of 4Ki (--max-body)" ]
	[ "${up%.*}" -lt 1000000 ]
	[ "${secs%.*}" -lt 5 ]
	# the keel CLI (libcurl, keep-alive) gets the message and the server goes on
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: big}\nspec:\n  image: b\n  args: ["%s"]\n' \
		"$(head -c 8000 /dev/zero | tr '\0' a)" >"$BATS_TEST_TMPDIR/big.yaml"
	run keel apply -f "$BATS_TEST_TMPDIR/big.yaml"
	[ "$status" -ne 0 ]
	assert_output --partial 'over the limit of 4Ki (--max-body)'
	healthy
}

@test "a chunked body past --max-body is read only to a small bound, not 64 MiB" {
	keel_server_start --controllers=none --max-body 4Ki
	# prints how many bytes of a 100 MB chunked upload went out before the server closed
	sent=$(python3 -c '
import socket, sys
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.settimeout(10)
s.sendall(("POST /apis/keel/v1/namespaces/default/tasks HTTP/1.1\r\nHost: x\r\n"
           "Authorization: Bearer " + sys.argv[2] + "\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n").encode())
chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
sent = 0
try:
    while sent < 100 * 1000 * 1000:
        s.sendall(chunk)
        sent += len(chunk)
except OSError:
    pass
print(sent)' "$KEEL_URL" "$KEEL_TOKEN_VALUE")
	echo "sent $sent" >&2
	[ "$sent" -lt $((32 * 1024 * 1024)) ]
	[ "$(rejections body)" = 1 ]
	healthy
}

@test "--idle-timeout, not --request-timeout, applies to a kept-alive connection between requests; closed silently, not counted" {
	keel_server_start --controllers=none --request-timeout 2s --idle-timeout 5s
	# prints each answer's status line, then when and how the connection ended
	run python3 -c '
import socket, sys, time
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
def get():
    s.sendall(("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").encode())
    got = b""
    while not got.endswith(b"ok"):
        b = s.recv(65536)
        if not b:
            return "closed"
        got += b
    return got.split(b"\r\n")[0].decode()
print(get())
time.sleep(3.5)  # past --request-timeout, within --idle-timeout
print(get())
t = time.monotonic()
s.settimeout(20)
print("eof" if s.recv(1) == b"" else "data", "after %.0fs" % (time.monotonic() - t))
' "$KEEL_URL"
	assert_line --index 0 'HTTP/1.1 200 OK'
	assert_line --index 1 'HTTP/1.1 200 OK'
	assert_line --index 2 --regexp '^eof after [5-7]s$'
	[ "$(rejections request_time)" = 0 ]
}

@test "--store-size smaller than the data: a warning at start naming both sizes; a full store's 507 is counted (limit=store)" {
	keel_server_start --controllers=none
	big=$(head -c 20000 /dev/zero | tr '\0' a)
	for i in $(seq 1 30); do
		[ "$(req POST "$NS/tasks" -d "$(task "t$i" '' ",\"args\":[\"$big\"]")")" = 201 ]
	done
	keel_server_stop
	: >"$SERVER_LOG"
	keel_server_start --controllers=none --store-size 256Ki
	grep -E 'the store holds [0-9]+ bytes, more than --store-size 256Ki \(262144 bytes\): writes that grow it get 507' "$SERVER_LOG"
	[ "$(req GET "$NS/tasks/t1")" = 200 ]
	[ "$(req POST "$NS/tasks" -d "$(task more '' ",\"args\":[\"$big\"]")")" = 507 ]
	[ "$(body .reason)" = InsufficientStorage ]
	[ "$(rejections store)" = 1 ]
	# a quota that fits says nothing
	keel_server_stop
	: >"$SERVER_LOG"
	keel_server_start --controllers=none --store-size 64Mi
	run ! grep 'more than --store-size' "$SERVER_LOG"
	[ "$(rejections store)" = 0 ]
}
