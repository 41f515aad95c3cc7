#!/usr/bin/env bats
# End-to-end tests of roles (admin, viewer, node: server/authz.h), minted
# tokens (keel token, /apis/keel/v1/tokens) and secrets kept out of logs,
# against a real `keel server` (and, for the node token, a real agent on
# the process runtime).

load helpers

# The token file of the role tests: an admin, a viewer and node n1.
ADMIN=admin-tok-0123456789
VIEWER=viewer-tok-0123456789
NODE=node1-tok-0123456789

setup() {
	AGENT_PID=""
	LISTENER_PID=""
	AGENT_LOG=$BATS_TEST_TMPDIR/agent.log
	: >"$AGENT_LOG"
}

teardown() {
	[ -z "$LISTENER_PID" ] || kill "$LISTENER_PID" 2>/dev/null || true
	if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		for t in $(keel get tasks -o name 2>/dev/null); do
			keel delete task "${t#*/}" >/dev/null 2>&1 || true
		done
		sleep 0.3
		kill "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	keel_server_stop
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$AGENT_LOG" "$SERVER_LOG"
}

# with_token_file: a server whose tokens are exactly those three.
with_token_file() {
	TOKENS=$BATS_TEST_TMPDIR/tokens.csv
	printf '%s,root,admin\n%s,alice,viewer\n%s,n1,node\n' "$ADMIN" "$VIEWER" "$NODE" >"$TOKENS"
	keel_server_start --controllers=none --token-file "$TOKENS" "$@"
	KEEL_TOKEN_VALUE=$ADMIN
	export KEEL_TOKEN=$ADMIN
}

# as TOKEN METHOD PATH [curl args...]: prints the HTTP code, a space and the body.
as() {
	local tok=$1 method=$2 path=$3
	shift 3
	local ct=(-H 'Content-Type: application/json')
	[[ "$*" == *Content-Type* ]] && ct=()
	curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -X "$method" \
		-H "Authorization: Bearer $tok" "${ct[@]}" "$@" "$KEEL_URL$path"
	echo -n " "
	cat "$BATS_TEST_TMPDIR/body"
}

# forbidden OUTPUT MESSAGE: a 403 Status with reason Forbidden and that message.
forbidden() {
	[ "${1%% *}" = 403 ] || { echo "want 403, got: $1" >&2; return 1; }
	echo "${1#* }" | jq -e --arg m "$2" '.kind == "Status" and .reason == "Forbidden" and .message == $m' >/dev/null ||
		{ echo "want message: $2; got: $1" >&2; return 1; }
}

T=/apis/keel/v1/namespaces/default/tasks
N=/apis/keel/v1/nodes
D=/apis/keel/v1/namespaces/default/deployments
APPLY=(-H 'Content-Type: application/apply-patch+json')
MERGE=(-H 'Content-Type: application/merge-patch+json')

seed() { # tasks t1 (bound to n1), t2 (bound to n2), t3 (unbound); nodes n1, n2; deployment web
	local n t
	for n in n1 n2; do
		api POST $N -d "{\"metadata\":{\"name\":\"$n\"}}" >/dev/null
	done
	api POST $T -d '{"metadata":{"name":"t1"},"spec":{"image":"host","command":["true"],"nodeName":"n1"}}' >/dev/null
	api POST $T -d '{"metadata":{"name":"t2"},"spec":{"image":"host","command":["true"],"nodeName":"n2"}}' >/dev/null
	api POST $T -d '{"metadata":{"name":"t3"},"spec":{"image":"host","command":["true"]}}' >/dev/null
	api POST $D -d '{"metadata":{"name":"web"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"image":"host","command":["true"]}}}}' >/dev/null
	[ "$(keel get tasks -o name | wc -l)" = 3 ]
}

@test "auth: a viewer reads and watches, and every write is 403 naming the user, the verb and why" {
	with_token_file
	seed
	run as "$VIEWER" GET $T
	[ "${output%% *}" = 200 ]
	run as "$VIEWER" GET $T/t1
	[ "${output%% *}" = 200 ]
	run as "$VIEWER" GET /metrics
	[ "${output%% *}" = 200 ]
	run as "$VIEWER" GET "$T?watch=1&timeoutSeconds=1"
	[ "${output%% *}" = 200 ]
	[[ "$output" == *'"type":"ADDED"'* ]]
	why="viewers may only read"
	run as "$VIEWER" POST $T -d '{"metadata":{"name":"x"},"spec":{"image":"host"}}'
	forbidden "$output" "user \"alice\" (role viewer) cannot create tasks in namespace \"default\": $why"
	run as "$VIEWER" PUT $T/t1 -d '{"metadata":{"name":"t1"},"spec":{"image":"host"}}'
	forbidden "$output" "user \"alice\" (role viewer) cannot update tasks \"t1\" in namespace \"default\": $why"
	run as "$VIEWER" PATCH $D/web "${MERGE[@]}" -d '{"spec":{"replicas":3}}'
	forbidden "$output" "user \"alice\" (role viewer) cannot patch deployments \"web\" in namespace \"default\": $why"
	run as "$VIEWER" PATCH $N/n1 "${APPLY[@]}" -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"n1"}}'
	forbidden "$output" "user \"alice\" (role viewer) cannot patch nodes \"n1\": $why"
	run as "$VIEWER" DELETE $T/t1
	forbidden "$output" "user \"alice\" (role viewer) cannot delete tasks \"t1\" in namespace \"default\": $why"
	run as "$VIEWER" PATCH $T/t1/status "${MERGE[@]}" -d '{"status":{"phase":"Failed"}}'
	forbidden "$output" "user \"alice\" (role viewer) cannot patch tasks/status \"t1\" in namespace \"default\": $why"
	run as "$VIEWER" POST $T/t3/binding -d '{"target":{"kind":"Node","name":"n1"}}'
	forbidden "$output" "user \"alice\" (role viewer) cannot create tasks/binding \"t3\" in namespace \"default\": $why"
	run as "$VIEWER" PUT /apis/keel/v1/leases/n1 -d '{}'
	forbidden "$output" "user \"alice\" (role viewer) cannot update leases \"n1\": $why"
	run as "$VIEWER" GET $T/t1/log
	forbidden "$output" "user \"alice\" (role viewer) cannot get tasks/log \"t1\" in namespace \"default\": a task's output may hold secrets: only admins read task logs"
	# nothing changed, and the CLI says so the kubectl way
	[ "$(keel get deployment web -o json | jq .spec.replicas)" = 1 ]
	run keel --token "$VIEWER" get tasks t1
	assert_success
	run keel --token "$VIEWER" scale deployment web --replicas 2
	assert_failure 1
	assert_output --partial 'Error from server (Forbidden): user "alice" (role viewer) cannot patch deployments "web"'
}

@test "auth: a node writes its own Node, lease and its Tasks' status, and nothing else" {
	with_token_file
	seed
	# what the agent does, allowed
	run as "$NODE" PATCH "$N/n1?fieldManager=keel-agent" "${APPLY[@]}" -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"n1","labels":{"zone":"a"}}}'
	[ "${output%% *}" = 200 ]
	run as "$NODE" PUT $N/n1/status -d '{"metadata":{"name":"n1"},"status":{"address":"10.0.0.1"}}'
	[ "${output%% *}" = 200 ]
	run as "$NODE" PUT /apis/keel/v1/leases/n1 -d '{"spec":{"holderIdentity":"a1"}}'
	[ "${output%% *}" = 200 ]
	run as "$NODE" PATCH $T/t1/status "${MERGE[@]}" -d '{"status":{"phase":"Running"}}'
	[ "${output%% *}" = 200 ]
	run as "$NODE" GET "/apis/keel/v1/tasks?fieldSelector=spec.nodeName%3Dn1"
	[ "${output%% *}" = 200 ]
	[ "$(keel get task t1 -o json | jq -r .status.phase)" = Running ]
	[ "$(keel get node n1 -o json | jq -r .status.address)" = 10.0.0.1 ]
	# everything else, refused with the reason
	u='user "n1" (role node)'
	run as "$NODE" PATCH $N/n2 "${MERGE[@]}" -d '{"spec":{"unschedulable":true}}'
	forbidden "$output" "$u cannot patch nodes \"n2\": a node may write only its own Node"
	run as "$NODE" PUT $N/n2/status -d '{"metadata":{"name":"n2"},"status":{}}'
	forbidden "$output" "$u cannot update nodes/status \"n2\": a node may write only its own Node"
	run as "$NODE" POST $N -d '{"metadata":{"name":"n3"}}'
	forbidden "$output" "$u cannot create nodes \"n3\": a node may write only its own Node"
	run as "$NODE" PUT /apis/keel/v1/leases/n2 -d '{}'
	forbidden "$output" "$u cannot update leases \"n2\": a node may renew only its own lease"
	run as "$NODE" PATCH $D/web "${MERGE[@]}" -d '{"spec":{"replicas":3}}'
	forbidden "$output" "$u cannot patch deployments \"web\" in namespace \"default\": a node may write only its own Node, its lease and the status of its Tasks"
	run as "$NODE" PATCH $T/t1 "${MERGE[@]}" -d '{"spec":{"image":"evil"}}'
	forbidden "$output" "$u cannot patch tasks \"t1\" in namespace \"default\": a node may write only the status of its Tasks, not their spec or metadata"
	run as "$NODE" POST $T/t3/binding -d '{"target":{"kind":"Node","name":"n1"}}'
	forbidden "$output" "$u cannot create tasks/binding \"t3\" in namespace \"default\": only the scheduler binds Tasks to nodes"
	run as "$NODE" DELETE $T/t1
	forbidden "$output" "$u cannot delete tasks \"t1\" in namespace \"default\": a node may not delete objects"
	run as "$NODE" DELETE $N/n1
	forbidden "$output" "$u cannot delete nodes \"n1\": a node may not delete objects"
	run as "$NODE" PATCH $T/t2/status "${MERGE[@]}" -d '{"status":{"phase":"Failed"}}'
	forbidden "$output" "$u cannot patch tasks/status \"t2\" in namespace \"default\": the task is bound to another node"
	run as "$NODE" PUT $T/t3/status -d '{"metadata":{"name":"t3"},"status":{"phase":"Failed"}}'
	forbidden "$output" "$u cannot update tasks/status \"t3\" in namespace \"default\": the task is not bound to a node"
	run as "$NODE" PATCH $T/nosuch/status "${MERGE[@]}" -d '{"status":{}}'
	[ "${output%% *}" = 404 ]
	run as "$NODE" GET $D
	forbidden "$output" "$u cannot list deployments in namespace \"default\": a node reads only tasks, nodes, namespaces, leases and discovery"
	# its own Node's spec is the admins' (cordon, taints): a node may not undo a cordon
	run as "$ADMIN" PATCH $N/n1 "${MERGE[@]}" -d '{"spec":{"unschedulable":true,"taints":[{"key":"k","effect":"NoSchedule"}]}}'
	[ "${output%% *}" = 200 ]
	why="a node may not change its own Node's spec (admins set it: cordon, taints); it writes its labels and status"
	run as "$NODE" PATCH $N/n1 "${MERGE[@]}" -d '{"spec":{"unschedulable":false}}'
	forbidden "$output" "$u cannot patch nodes \"n1\": spec.unschedulable: $why"
	run as "$NODE" PATCH $N/n1 "${MERGE[@]}" -d '{"spec":{"taints":null}}'
	forbidden "$output" "$u cannot patch nodes \"n1\": spec.taints: $why"
	run as "$NODE" PUT $N/n1 -d '{"metadata":{"name":"n1"},"spec":{}}'
	forbidden "$output" "$u cannot update nodes \"n1\": spec.unschedulable: $why"
	run as "$NODE" PATCH "$N/n1?fieldManager=keel-agent" "${APPLY[@]}" -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"n1"},"spec":{"unschedulable":false}}'
	forbidden "$output" "$u cannot patch nodes \"n1\": spec.unschedulable: $why"
	# what the agent applies (its labels, an empty spec) still goes through
	run as "$NODE" PATCH "$N/n1?fieldManager=keel-agent" "${APPLY[@]}" -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"n1","labels":{"zone":"b"}},"spec":{}}'
	[ "${output%% *}" = 200 ]
	[ "$(keel get node n1 -o json | jq -c '[.spec.unschedulable, .metadata.labels.zone, (.spec.taints | length)]')" = '[true,"b",1]' ]
	# nothing of it happened
	[ "$(keel get deployment web -o json | jq .spec.replicas)" = 1 ]
	[ "$(keel get task t2 -o json | jq -r '.status.phase')" != Failed ]
	[ "$(keel get task t1 -o json | jq -r .spec.image)" = host ]
	[ "$(keel get task t3 -o json | jq -r '.spec.nodeName // "none"')" = none ]
	[ "$(keel get node n2 -o json | jq -r '.spec.unschedulable // false')" = false ]
	keel get node n1 >/dev/null
}

@test "auth: the log relay never hands a caller's token to a node: a fake logEndpoint sees only that node's log key" {
	with_token_file
	seed
	# node n1 points its own Node's logEndpoint at a listener it runs
	python3 "$BATS_TEST_DIRNAME/log_listener.py" "$BATS_TEST_TMPDIR/port" "$BATS_TEST_TMPDIR/headers" &
	LISTENER_PID=$!
	for _ in $(seq 1 100); do [ -s "$BATS_TEST_TMPDIR/port" ] && break; sleep 0.05; done
	port=$(cat "$BATS_TEST_TMPDIR/port")
	run as "$NODE" PATCH $N/n1/status "${MERGE[@]}" -d "{\"status\":{\"logEndpoint\":\"http://127.0.0.1:$port\"}}"
	[ "${output%% *}" = 200 ]
	# an admin reads t1's log (bound to n1): it is relayed to the listener
	run keel logs t1
	kill "$LISTENER_PID"; wait "$LISTENER_PID" 2>/dev/null || true
	assert_success
	assert_output "fake log"
	# what it received: n1's log key, never the admin's (or any) token
	run grep -c -e "$ADMIN" -e "$VIEWER" -e "$NODE" "$BATS_TEST_TMPDIR/headers"
	[ "$status" = 1 ]
	run as "$NODE" GET $N/n1/logkey
	[ "${output%% *}" = 200 ]
	key=$(echo "${output#* }" | jq -r .key)
	[ ${#key} -ge 32 ]
	[ "$(cat "$BATS_TEST_TMPDIR/headers")" = "Bearer $key" ]
	# the admin reads any node's key; n1 not n2's, a viewer none
	run as "$ADMIN" GET $N/n1/logkey
	[ "$(echo "${output#* }" | jq -r .key)" = "$key" ]
	run as "$ADMIN" GET $N/n2/logkey
	[ "${output%% *}" = 200 ]
	[ "$(echo "${output#* }" | jq -r .key)" != "$key" ]
	run as "$NODE" GET $N/n2/logkey
	forbidden "$output" 'user "n1" (role node) cannot get nodes/logkey "n2": a node reads only its own log key'
	run as "$VIEWER" GET $N/n1/logkey
	forbidden "$output" 'user "alice" (role viewer) cannot get nodes/logkey "n1": only admins and the node itself read a log key'
}

@test "auth: no token or an unknown one is 401; health needs none" {
	with_token_file
	run as nosuchtoken GET $T
	[ "${output%% *}" = 401 ]
	echo "${output#* }" | jq -e '.reason == "Unauthorized"'
	run curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "$KEEL_URL$T"
	[ "$output" = 401 ]
	run curl -s -o /dev/null -w '%{http_code}' "$KEEL_URL/healthz"
	[ "$output" = 200 ]
}

@test "auth: keel token create mints tokens that work, survive a restart and can be revoked" {
	keel_server_start --controllers=none
	run keel token create --role viewer --user alice
	assert_success
	tok=$(keel token list >/dev/null; echo "${lines[-1]}")
	[[ "$tok" =~ ^[0-9a-f]{64}$ ]]
	# stdout holds the token alone: what $(...) captures
	ntok=$(keel token create --role node --node n1 2>/dev/null)
	[[ "$ntok" =~ ^[0-9a-f]{64}$ ]]
	run as "$tok" GET $T
	[ "${output%% *}" = 200 ]
	run as "$tok" POST $T -d '{"metadata":{"name":"x"},"spec":{"image":"host"}}'
	forbidden "$output" 'user "alice" (role viewer) cannot create tasks in namespace "default": viewers may only read'
	run as "$ntok" PUT /apis/keel/v1/leases/n1 -d '{}'
	[ "${output%% *}" = 200 ]
	run keel token list
	assert_success
	assert_line --regexp '^alice +viewer +minted$'
	assert_line --regexp '^n1 +node +minted$'
	assert_line --regexp '^admin +admin +admin.token$'
	[[ "$output" != *"$tok"* ]]
	# kept in the store as hashes (not in DATA/tokens, nowhere in clear),
	# and loaded again at the next start
	[ ! -e "$KEEL_DATA/tokens" ]
	! grep -rqa "$tok" "$KEEL_DATA"
	if on_lmdb; then
		grep -qa "\"tokenHash\":\"sha256:$(printf %s "$tok" | sha256sum | cut -d' ' -f1)\"" "$KEEL_DATA/data.mdb"
	fi
	keel_server_stop
	keel_server_start --controllers=none
	run as "$tok" GET $T
	[ "${output%% *}" = 200 ]
	# a name is taken once
	run keel token create --role admin --user alice
	assert_failure 1
	assert_output --partial 'Error from server (AlreadyExists): tokens "alice" already exists'
	# revoked: 401 at once, and after a restart
	run keel token revoke alice
	assert_success
	assert_output "token/alice revoked"
	run as "$tok" GET $T
	[ "${output%% *}" = 401 ]
	keel_server_stop
	keel_server_start --controllers=none
	run as "$tok" GET $T
	[ "${output%% *}" = 401 ]
	run as "$ntok" PUT /apis/keel/v1/leases/n1 -d '{}'
	[ "${output%% *}" = 200 ]
	run keel token revoke admin
	assert_failure 1
	assert_output --partial "cannot be revoked"
}

@test "auth: keel token create checks its flags; only admins mint; a token file refuses minting" {
	keel_server_start --controllers=none
	run keel token create --role root --user bob
	assert_failure 2
	assert_output --partial "--role must be admin, viewer or node"
	run keel token create --role node
	assert_failure 2
	assert_output --partial "--role node needs --node NAME"
	run keel token create --role node --node Not_A_Node
	assert_failure 2
	assert_output --partial "--node: not a valid node name"
	run keel token create --role viewer --node n1
	assert_failure 2
	run keel token mint
	assert_failure 2
	assert_output --partial 'did you mean "list"?'
	# the server checks as well
	run api POST /apis/keel/v1/tokens -d '{"metadata":{"name":"x"},"spec":{"role":"root"}}'
	echo "$output" | jq -e '.code == 422 and (.message | contains("spec.role: Unsupported value \"root\""))'
	vtok=$(keel token create --role viewer --user v 2>/dev/null)
	ntok=$(keel token create --role node --node n9 2>/dev/null)
	run keel --token "$vtok" token create --role admin --user evil
	assert_failure 1
	assert_output --partial 'Error from server (Forbidden): user "v" (role viewer) cannot create tokens: viewers may only read'
	run keel --token "$ntok" token list
	assert_failure 1
	assert_output --partial "(Forbidden)"
	keel_server_stop
	rm -rf "$KEEL_DATA"
	with_token_file
	run keel token create --role node --node n2
	assert_failure 1
	assert_output --partial "cannot mint tokens: this server's tokens come from the token file $TOKENS (--token-file), which is the only source"
	run keel token list
	assert_success
	assert_line --regexp '^alice +viewer +token-file$'
	[[ "$output" != *"$VIEWER"* ]]
}

@test "auth: a token file's roleless line and loose mode are warned at start; a BOM is skipped; a bad name names file:line" {
	TOKENS=$BATS_TEST_TMPDIR/tokens.csv
	printf '\xef\xbb\xbf%s,root\n%s,Jane Doe,viewer\n' "$ADMIN" "$VIEWER" >"$TOKENS"
	chmod 0644 "$TOKENS"
	keel_server_start --controllers=none --token-file "$TOKENS"
	grep -F "$TOKENS:1: no role for \"root\": it gets admin" "$SERVER_LOG"
	grep -F "token file $TOKENS is accessible by others than its owner (mode 0644): chmod 600 it" "$SERVER_LOG"
	run as "$ADMIN" GET $T
	assert_output --regexp '^200 '
	run as "$ADMIN" GET /apis/keel/v1/tokens
	assert_output --partial '"name":"Jane Doe"'
	keel_server_stop
	printf '%s,al"ice,viewer\n' "$VIEWER" >"$BATS_TEST_TMPDIR/bad.csv"
	run timeout 10 "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/d2" --listen 127.0.0.1:0 --token-file "$BATS_TEST_TMPDIR/bad.csv"
	assert_failure
	assert_output --partial "$BATS_TEST_TMPDIR/bad.csv:1: the name holds a '\"'"
}

@test "auth: a real agent with a node token registers, runs its Task and reports; env values stay out of every log" {
	port=$(free_port)
	keel_server_start --log-level debug --listen "127.0.0.1:$port"
	ntok=$(keel token create --role node --node n1 2>/dev/null)
	secret="s3cr3t-$RANDOM-$RANDOM-value"
	want=$(printf %s "$secret" | sha256sum | cut -c1-16)
	"$KEEL" agent --runtime process --name n1 --token "$ntok" --server "$KEEL_URL" \
		--data-dir "$BATS_TEST_TMPDIR/agent" --heartbeat-interval 1s --log-level debug >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 1 100); do
		keel get nodes n1 2>/dev/null | grep -q " Ready " && break
		sleep 0.1
	done
	keel get nodes n1 | grep -q " Ready "
	# scheduled by the scheduler; succeeds only when the env reached it
	cat >"$BATS_TEST_TMPDIR/t.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: secretive}
spec:
  image: host
  command: [sh, -c, 'echo checking the key; [ "\$(printf %s "\$API_KEY" | sha256sum | cut -c1-16)" = $want ]']
  env:
  - {name: API_KEY, value: "$secret"}
  restartPolicy: Never
YAML
	keel apply -f "$BATS_TEST_TMPDIR/t.yaml" --log-level debug >"$BATS_TEST_TMPDIR/cli.out" 2>"$BATS_TEST_TMPDIR/cli.log"
	keel diff -f "$BATS_TEST_TMPDIR/t.yaml" --log-level debug >>"$BATS_TEST_TMPDIR/cli.out" 2>>"$BATS_TEST_TMPDIR/cli.log" || true
	for _ in $(seq 1 100); do
		[ "$(keel get task secretive -o json | jq -r .status.phase)" = Succeeded ] && break
		sleep 0.1
	done
	run keel get task secretive -o json
	echo "$output" | jq -e '.status.phase == "Succeeded" and .spec.nodeName == "n1"'
	# keel logs as the admin, relayed to an agent that runs with a node token
	run keel logs secretive
	assert_success
	assert_output "checking the key"
	# the agent's log server takes n1's log key and nothing else: not the
	# admin's token (it is never sent there), not the node's own token
	ep=$(keel get node n1 -o json | jq -r .status.logEndpoint)
	key=$(api GET $N/n1/logkey | jq -r .key)
	logs_as() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$ep/logs/default/secretive"; }
	[ "$(logs_as "$key")" = 200 ]
	[ "$(logs_as "$KEEL_TOKEN_VALUE")" = 401 ]
	[ "$(logs_as "$ntok")" = 401 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$ep/logs/default/secretive")" = 401 ]
	# a server restart makes new keys: the agent reads its new one, the old one is refused
	keel_server_stop
	keel_server_start --log-level debug --listen "127.0.0.1:$port"
	key2=$(api GET $N/n1/logkey | jq -r .key)
	[ -n "$key2" ] && [ "$key2" != "$key" ]
	run keel logs secretive
	assert_success
	assert_output "checking the key"
	sleep 1.1 # past the agent's once-a-second limit on reading its key again
	[ "$(logs_as "$key")" = 401 ]
	[ "$(logs_as "$key2")" = 200 ]
	# an admin cordons n1; the agent, restarted, registers again and the cordon stays
	run as "$KEEL_TOKEN_VALUE" PATCH $N/n1 "${MERGE[@]}" -d '{"spec":{"unschedulable":true}}'
	[ "${output%% *}" = 200 ]
	kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
	"$KEEL" agent --runtime process --name n1 --token "$ntok" --server "$KEEL_URL" \
		--data-dir "$BATS_TEST_TMPDIR/agent" --heartbeat-interval 1s --log-level debug >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 1 100); do
		grep -c "node(s) registered" "$AGENT_LOG" | grep -qx 2 && break
		sleep 0.1
	done
	[ "$(grep -c "node(s) registered" "$AGENT_LOG")" = 2 ]
	keel get node n1 -o json | jq -e '.spec.unschedulable == true'
	keel describe task secretive --log-level debug >>"$BATS_TEST_TMPDIR/cli.out" 2>>"$BATS_TEST_TMPDIR/cli.log"
	# the node token cannot touch another node or a Deployment
	api POST $N -d '{"metadata":{"name":"n2"}}' >/dev/null
	run as "$ntok" PATCH $N/n2 "${MERGE[@]}" -d '{"metadata":{"labels":{"x":"y"}}}'
	forbidden "$output" 'user "n1" (role node) cannot patch nodes "n2": a node may write only its own Node'
	run as "$ntok" POST $D -d '{"metadata":{"name":"web"}}'
	[ "${output%% *}" = 403 ]
	# an authorized reader sees the value (as in Kubernetes); no log does
	keel get task secretive -o yaml | grep -q "$secret"
	grep -q "PATCH /apis/keel/v1/namespaces/default/tasks/secretive/status 200" "$SERVER_LOG"
	grep -q "agent: task default/secretive: phase Succeeded" "$AGENT_LOG"
	grep -q "PATCH http.*/tasks/secretive.* -> 20[01]" "$BATS_TEST_TMPDIR/cli.log" # debug was on
	# every log: the server's and the agent's at debug level, the CLI's
	# --log-level debug output, and the task's own output files
	logs=("$SERVER_LOG" "$AGENT_LOG" "$BATS_TEST_TMPDIR/cli.log")
	while IFS= read -r f; do logs+=("$f"); done < <(find "$BATS_TEST_TMPDIR/agent" -name log)
	[ "${#logs[@]}" -gt 3 ]
	run grep -c -e "$secret" -e "$ntok" "${logs[@]}" # nor the node's token
	[ "$status" = 1 ] # 1: no match (2 would be a missing file)
}

@test "auth: revoking a token ends the watch streams opened with it (an ERROR event, then the end)" {
	keel_server_start --controllers=none
	tok=$(keel token create --role viewer --user alice 2>/dev/null)
	btok=$(keel token create --role viewer --user bob 2>/dev/null)
	out=$BATS_TEST_TMPDIR/watch-alice
	curl -sN -H "Authorization: Bearer $tok" --max-time 30 "$KEEL_URL$T?watch=1&timeoutSeconds=25" >"$out" &
	pa=$!
	curl -sN -H "Authorization: Bearer $btok" --max-time 30 "$KEEL_URL$T?watch=1&timeoutSeconds=3" >"$BATS_TEST_TMPDIR/watch-bob" &
	pb=$!
	watchers() { curl -s -H "Authorization: Bearer $KEEL_TOKEN_VALUE" "$KEEL_URL/metrics" | awk '/^keel_watchers /{print $2}'; }
	for i in $(seq 1 50); do [ "$(watchers)" = 2 ] && break; sleep 0.1; done
	[ "$(watchers)" = 2 ]
	run as "$KEEL_TOKEN_VALUE" POST $T -d '{"metadata":{"name":"before"},"spec":{"image":"host"}}'
	[ "${output%% *}" = 201 ]
	for i in $(seq 1 50); do grep -q '"before"' "$out" && break; sleep 0.1; done
	run keel token revoke alice
	assert_success
	start=$SECONDS
	wait "$pa" # curl's status 0: the server ended the stream
	[ $((SECONDS - start)) -lt 5 ]
	run as "$KEEL_TOKEN_VALUE" POST $T -d '{"metadata":{"name":"after"},"spec":{"image":"host"}}'
	[ "${output%% *}" = 201 ]
	grep -q '"before"' "$out"
	! grep -q '"after"' "$out"
	tail -1 "$out" | jq -e '.type == "ERROR" and .object.code == 401 and .object.reason == "Unauthorized" and
		.object.message == "the token of this watch was revoked"'
	# bob's watch is not his: it ran to its timeout and saw both
	wait "$pb"
	grep -q '"after"' "$BATS_TEST_TMPDIR/watch-bob"
}

@test "auth: an old data directory's DATA/tokens is imported into the store once, then renamed DATA/tokens.imported" {
	KEEL_DATA=$BATS_TEST_TMPDIR/data
	mkdir -p "$KEEL_DATA"
	old=0123456789abcdef0123456789abcdef-carol
	printf '# keel: tokens minted with `keel token create`\nsha256:%s,carol,viewer\n' \
		"$(printf %s "$old" | sha256sum | cut -d' ' -f1)" >"$KEEL_DATA/tokens"
	chmod 600 "$KEEL_DATA/tokens"
	keel_server_start --controllers=none
	grep -q "imported 1 minted token from $KEEL_DATA/tokens into the store" "$SERVER_LOG"
	[ ! -e "$KEEL_DATA/tokens" ]
	[ -f "$KEEL_DATA/tokens.imported" ]
	run as "$old" GET $T
	[ "${output%% *}" = 200 ]
	run keel token list
	assert_line --regexp '^carol +viewer +minted$'
	# the store has it now: the next start does not need the file
	keel_server_stop
	rm "$KEEL_DATA/tokens.imported"
	keel_server_start --controllers=none
	run as "$old" GET $T
	[ "${output%% *}" = 200 ]
	run keel token revoke carol
	assert_success
	run as "$old" GET $T
	[ "${output%% *}" = 401 ]
}
