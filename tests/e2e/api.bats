#!/usr/bin/env bats
# The HTTP API end to end: curl + jq against a real `keel server` with its
# LMDB store in the test's temp directory, on a free loopback port
# (helpers.bash starts it). What is checked is what a client sees: status
# codes, Status reasons and messages, resourceVersions and watch streams.

load helpers

NS=/apis/keel/v1/namespaces/default

setup() {
	keel_server_start --controllers=none --bookmark-interval 1s
	BODY=$BATS_TEST_TMPDIR/body
}
# Under the sanitizers (KEEL_SANITIZE builds) a report in the server log
# fails the test that caused it.
teardown() {
	keel_server_stop
	! grep -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"
}

# req METHOD PATH [curl args...]: prints the HTTP code; the body is in $BODY.
# A Content-Type given in the args replaces the default application/json.
req() {
	local method=$1 path=$2 ct='Content-Type: application/json' a
	shift 2
	for a in "$@"; do
		case $a in Content-Type:*) ct=$a ;; esac
	done
	curl -s -X "$method" -H "Authorization: Bearer $KEEL_TOKEN_VALUE" \
		-H "$ct" -o "$BODY" -w '%{http_code}' "$@" "$KEEL_URL$path"
}
body() { jq -r "$@" "$BODY"; }

task() { # task NAME [IMAGE] [LABELS-JSON]
	printf '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"%s","labels":%s},"spec":{"image":"%s"}}' \
		"$1" "${3:-{\}}" "${2:-busybox}"
}
create_task() { api POST "$NS/tasks" -d "$(task "$@")" >/dev/null; }
# merge PATH JSON: a merge patch, discarding the answer.
merge() { req PATCH "$1" -H 'Content-Type: application/merge-patch+json' -d "$2" >/dev/null; }
rv_of() { api GET "$1" | jq -r .metadata.resourceVersion; }
current_rv() { api GET "$NS/tasks" | jq -r .metadata.resourceVersion; }

# watch PATH-WITH-QUERY: the events of a watch (timeoutSeconds in the query)
# without BOOKMARKs, one compact JSON per line.
watch_events() {
	curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 20 "$KEEL_URL$1" |
		jq -c 'select(.type != "BOOKMARK") | [.type, .object.metadata.name, (.object.metadata.resourceVersion|tonumber)]'
}

deployment() { # deployment NAME EXTRA-SPEC-JSON
	printf '{"apiVersion":"keel/v1","kind":"Deployment","metadata":{"name":"%s"},"spec":{"selector":{"matchLabels":{"app":"%s"}},"template":{"metadata":{"labels":{"app":"%s"}},"spec":{"image":"nginx"}}%s}}' \
		"$1" "$1" "$1" "${2:-}"
}

@test "discovery lists the group, the kinds and their subresources" {
	[ "$(req GET /apis)" = 200 ]
	[ "$(body '.kind')" = APIGroupList ]
	[ "$(body '.groups[0].name')" = keel ]
	[ "$(body '.groups[0].preferredVersion.groupVersion')" = keel/v1 ]
	[ "$(req GET /apis/keel/v1)" = 200 ]
	[ "$(body '.groupVersion')" = keel/v1 ]
	[ "$(body '.resources[] | select(.name == "tasks") | .kind')" = Task ]
	[ "$(body '.resources[] | select(.name == "tasks") | .namespaced')" = true ]
	[ "$(body '.resources[] | select(.name == "nodes") | .namespaced')" = false ]
	[ "$(body '.resources[] | select(.name == "deployments") | .shortNames[0]')" = deploy ]
	[ "$(body '[.resources[].name] | index("tasks/status") != null')" = true ]
	[ "$(body '.resources[] | select(.name == "tasks/binding") | .verbs[0]')" = create ]
	[ "$(req GET /version)" = 200 ]
	[ "$(body .apiVersion)" = keel/v1 ]
	[ -n "$(body .version)" ]
}

@test "every request but healthz/readyz needs the bearer token" {
	run curl -s "$KEEL_URL/healthz"
	assert_output ok
	run curl -s "$KEEL_URL/readyz"
	assert_output ok
	run curl -s -o /dev/null -w '%{http_code}' "$KEEL_URL/apis/keel/v1/namespaces"
	assert_output 401
	out=$(curl -s "$KEEL_URL$NS/tasks")
	[ "$(jq -r .reason <<<"$out")" = Unauthorized ]
	[ "$(jq -r .kind <<<"$out")" = Status ]
	run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$KEEL_URL/metrics"
	assert_output 401
	run curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${KEEL_TOKEN_VALUE}x" "$KEEL_URL$NS/tasks"
	assert_output 401
	# unknown paths do not tell strangers what exists
	run curl -s -o /dev/null -w '%{http_code}' "$KEEL_URL/apis/keel/v1/taks"
	assert_output 401
	# the config file the CLI uses carries the admin token, mode 0600
	[ "$(jq -r .token "$KEEL_DATA/config")" = "$KEEL_TOKEN_VALUE" ]
	[ "$(stat -c %a "$KEEL_DATA/config")" = 600 ]
	[ "$(stat -c %a "$KEEL_DATA/admin.token")" = 600 ]
}

@test "create sets uid, creationTimestamp, generation 1 and resourceVersion; a second create is 409" {
	[ "$(req POST "$NS/tasks" -d "$(task web)")" = 201 ]
	[[ "$(body .metadata.uid)" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
	[[ "$(body .metadata.creationTimestamp)" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]]
	[ "$(body .metadata.generation)" = 1 ]
	[ "$(body .metadata.namespace)" = default ]
	[[ "$(body .metadata.resourceVersion)" =~ ^[0-9]+$ ]]
	rv=$(body .metadata.resourceVersion)
	[ "$(req GET "$NS/tasks/web")" = 200 ]
	[ "$(body .metadata.resourceVersion)" = "$rv" ]
	[ "$(body .spec.image)" = busybox ]
	[ "$(req POST "$NS/tasks" -d "$(task web other)")" = 409 ]
	[ "$(body .reason)" = AlreadyExists ]
	[ "$(body .message)" = 'tasks "web" already exists' ]
	[ "$(req GET "$NS/tasks/web")" = 200 ]
	[ "$(body .spec.image)" = busybox ]
}

@test "get of a missing object is a 404 Status naming it" {
	[ "$(req GET "$NS/tasks/nope")" = 404 ]
	[ "$(body .kind)" = Status ]
	[ "$(body .reason)" = NotFound ]
	[ "$(body .message)" = 'tasks "nope" not found' ]
	[ "$(body .details.name)" = nope ]
	[ "$(body .details.kind)" = tasks ]
}

@test "an invalid object is a 422 with one cause per field" {
	[ "$(req POST "$NS/deployments" -d "$(deployment web ',"replica":3')")" = 422 ]
	[ "$(body .reason)" = Invalid ]
	[ "$(body '.details.causes[0].field')" = spec.replica ]
	[[ "$(body '.details.causes[0].message')" == *"did you mean spec.replicas"* ]]
	[[ "$(body .message)" == *'Deployment "web" is invalid'* ]]
	[ "$(req POST "$NS/tasks" -d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"Bad_Name"},"spec":{}}')" = 422 ]
	body '.details.causes[].field' | grep -qx metadata.name
	body '.details.causes[].field' | grep -qx spec.image
	[ "$(req GET "$NS/deployments/web")" = 404 ]
}

@test "malformed JSON is a 400 naming the byte offset" {
	[ "$(req POST "$NS/tasks" -d '{"apiVersion": "keel/v1", "kind": }')" = 400 ]
	[ "$(body .reason)" = BadRequest ]
	[[ "$(body .message)" =~ ^invalid\ JSON\ at\ byte\ [0-9]+: ]]
	[ "$(req POST "$NS/tasks" -d '[1,2]')" = 400 ]
	[[ "$(body .message)" == *"must be a JSON object"* ]]
	# kind and namespace must agree with the URL
	[ "$(req POST "$NS/tasks" -d "$(deployment web)")" = 400 ]
	[[ "$(body .message)" == *'kind "Deployment" does not match'* ]]
	[ "$(req POST "$NS/tasks" -d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"x","namespace":"other"},"spec":{"image":"b"}}')" = 400 ]
	[[ "$(body .message)" == *"namespace of the object (other)"* ]]
}

@test "unknown kinds, namespaces and methods" {
	[ "$(req GET /apis/keel/v1/taks)" = 404 ]
	[ "$(body .reason)" = NotFound ]
	[ "$(body .message)" = 'the server doesn'"'"'t have a resource type "taks"; known: deployments, events, namespaces, nodes, tasks; did you mean tasks?' ]
	[ "$(req POST /apis/keel/v1/namespaces/nope/tasks -d "$(task web)")" = 404 ]
	[ "$(body .message)" = 'namespaces "nope" not found' ]
	[ "$(req DELETE "$NS/tasks")" = 405 ]
	[ "$(body .reason)" = MethodNotAllowed ]
	run curl -s -o /dev/null -D - -X DELETE -H "Authorization: Bearer $KEEL_TOKEN_VALUE" "$KEEL_URL$NS/tasks"
	assert_output --partial 'Allow: GET, HEAD, POST'
	[ "$(req POST "$NS/tasks/web/status" -d '{}')" = 405 ]
	[ "$(req GET "$NS/events/e/status")" = 404 ]
	[ "$(req GET /apis/keel/v1/tasks/web)" = 404 ]
	[[ "$(body .message)" == *"namespaced"* ]]
}

@test "PUT with a stale resourceVersion is a 409 Conflict; generation moves only with spec" {
	create_task web
	rv=$(rv_of "$NS/tasks/web")
	obj=$(api GET "$NS/tasks/web")
	# labels only: new revision, same generation
	[ "$(req PUT "$NS/tasks/web" -d "$(jq -c '.metadata.labels = {"a": "1"}' <<<"$obj")")" = 200 ]
	[ "$(body .metadata.generation)" = 1 ]
	[ "$(body .metadata.labels.a)" = 1 ]
	rv2=$(body .metadata.resourceVersion)
	[ "$rv2" -gt "$rv" ]
	# the same body again, with the old resourceVersion: conflict
	[ "$(req PUT "$NS/tasks/web" -d "$(jq -c '.metadata.labels = {"a": "2"}' <<<"$obj")")" = 409 ]
	[ "$(body .reason)" = Conflict ]
	[ "$(body .message)" = "the object has been modified; please apply your changes to the latest version and try again" ]
	# spec change with the current resourceVersion: generation 2
	obj=$(api GET "$NS/tasks/web")
	[ "$(req PUT "$NS/tasks/web" -d "$(jq -c '.spec.image = "nginx"' <<<"$obj")")" = 200 ]
	[ "$(body .metadata.generation)" = 2 ]
	[ "$(body .spec.image)" = nginx ]
	# an identical PUT writes nothing
	obj=$(api GET "$NS/tasks/web")
	rv3=$(jq -r .metadata.resourceVersion <<<"$obj")
	[ "$(req PUT "$NS/tasks/web" -d "$obj")" = 200 ]
	[ "$(body .metadata.resourceVersion)" = "$rv3" ]
	[ "$(current_rv)" = "$rv3" ]
	# PUT of a missing object
	[ "$(req PUT "$NS/tasks/nope" -d "$(task nope)")" = 404 ]
	# the URL name wins over nothing, and must match what the body says
	[ "$(req PUT "$NS/tasks/web" -d "$(task other)")" = 400 ]
}

@test "concurrent patches of one object all land (optimistic retries)" {
	create_task web
	rv=$(rv_of "$NS/tasks/web")
	pids=()
	for i in $(seq 1 20); do
		curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $KEEL_TOKEN_VALUE" \
			-H 'Content-Type: application/merge-patch+json' \
			-d "{\"metadata\":{\"labels\":{\"l$i\":\"v\"}}}" "$KEEL_URL$NS/tasks/web" &
		pids+=($!)
	done
	wait "${pids[@]}"
	[ "$(api GET "$NS/tasks/web" | jq '.metadata.labels | length')" = 20 ]
	[ "$(rv_of "$NS/tasks/web")" = $((rv + 20)) ]
}

@test "status is written only through /status, and /status writes only status" {
	create_task web
	[ "$(req PUT "$NS/tasks/web/status" -d '{"status":{"phase":"Running","restartCount":2}}')" = 200 ]
	[ "$(body .status.phase)" = Running ]
	[ "$(body .metadata.generation)" = 1 ]
	[ "$(body .spec.image)" = busybox ]
	# the main resource ignores status, even when the spec changes with it
	obj=$(api GET "$NS/tasks/web")
	[ "$(req PUT "$NS/tasks/web" -d "$(jq -c '.status.phase = "Failed" | .spec.image = "nginx"' <<<"$obj")")" = 200 ]
	[ "$(body .status.phase)" = Running ]
	[ "$(body .spec.image)" = nginx ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Failed"}}')" = 200 ]
	[ "$(body .status.phase)" = Running ]
	# /status ignores spec
	[ "$(req PATCH "$NS/tasks/web/status" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"image":"x"},"status":{"message":"hi"}}')" = 200 ]
	[ "$(body .status.message)" = hi ]
	[ "$(body .status.restartCount)" = 2 ]
	[ "$(body .spec.image)" = nginx ]
	# but a body naming another object is refused, by PATCH as by PUT
	[ "$(req PUT "$NS/tasks/web/status" -d '{"metadata":{"name":"t2"},"status":{"message":"x"}}')" = 400 ]
	[[ "$(body .message)" == *"the name of the object (t2) does not match the name in the URL (web)"* ]]
	[ "$(req PATCH "$NS/tasks/web/status" -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"name":"t2"},"status":{"message":"x"}}')" = 400 ]
	[[ "$(body .message)" == *"the name of the object (t2) does not match the name in the URL (web)"* ]]
	[ "$(req PATCH "$NS/tasks/web/status" -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"namespace":"other"},"status":{"message":"x"}}')" = 400 ]
	[ "$(req GET "$NS/tasks/web/status")" = 200 ]
	[ "$(body .status.message)" = hi ]
	# /status takes merge patches only, and says so
	[ "$(req PATCH "$NS/tasks/web/status" -H 'Content-Type: application/apply-patch+json' -d '{}')" = 415 ]
	[ "$(body .message)" = 'unsupported patch Content-Type "application/apply-patch+json" for the status subresource (use application/merge-patch+json)' ]
	# status is validated too
	[ "$(req PUT "$NS/tasks/web/status" -d '{"status":{"phase":"Sleeping"}}')" = 422 ]
	[ "$(body '.details.causes[0].field')" = status.phase ]
	[ "$(req GET "$NS/tasks/web/status")" = 200 ]
	[ "$(body .status.phase)" = Running ]
}

@test "merge patch sets and removes fields; other patch types are refused" {
	create_task web image '{"a":"1","b":"2"}'
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{"b":null,"c":"3"}}}')" = 200 ]
	[ "$(body -c .metadata.labels)" = '{"a":"1","c":"3"}' ]
	[ "$(body .metadata.generation)" = 1 ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"image":"nginx"}}')" = 200 ]
	[ "$(body .metadata.generation)" = 2 ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"imag":"x"}}')" = 422 ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"name":"other"}}')" = 400 ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/json-patch+json' -d '[]')" = 415 ]
	[ "$(body .reason)" = UnsupportedMediaType ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: text/plain' -d '{}')" = 415 ]
	[ "$(body .message)" = 'unsupported patch Content-Type "text/plain" (use application/merge-patch+json or application/apply-patch+json)' ]
	[ "$(req PATCH "$NS/tasks/nope" -H 'Content-Type: application/merge-patch+json' -d '{}')" = 404 ]
}

apply() { # apply NAME JSON [QUERY]
	req PATCH "$NS/deployments/$1${3:-}" -H 'Content-Type: application/apply-patch+json' -D "$BATS_TEST_TMPDIR/headers" -d "$2"
}
apply_result() { grep -i '^Keel-Apply-Result:' "$BATS_TEST_TMPDIR/headers" | tr -d '\r' | awk '{print $2}'; }

@test "server-side apply: create, unchanged, dropped fields removed, others' fields kept" {
	m1=$(deployment web ',"replicas":2' | jq -c '.metadata.labels = {"team":"a","tier":"web"}')
	[ "$(apply web "$m1")" = 201 ]
	[ "$(apply_result)" = created ]
	[ "$(body .spec.replicas)" = 2 ]
	rv=$(body .metadata.resourceVersion)
	[ "$(body '.metadata.managedFields[0].manager')" = keel-apply ]
	# the same manifest again: nothing written, no watch event
	watch_events "$NS/deployments?watch=1&resourceVersion=$rv&timeoutSeconds=2" >"$BATS_TEST_TMPDIR/w" &
	pids=($!)
	sleep 0.3
	[ "$(apply web "$m1")" = 200 ]
	[ "$(apply_result)" = unchanged ]
	[ "$(body .metadata.resourceVersion)" = "$rv" ]
	wait "${pids[@]}" # not the server's pid
	[ ! -s "$BATS_TEST_TMPDIR/w" ]
	[ "$(current_rv)" = "$rv" ]
	# someone else sets a label and the status; apply keeps both
	[ "$(req PATCH "$NS/deployments/web" -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{"owner":"ops"}}}')" = 200 ]
	[ "$(req PUT "$NS/deployments/web/status" -d '{"status":{"replicas":2}}')" = 200 ]
	# the manifest drops the tier label: it goes; replicas changes
	m2=$(deployment web ',"replicas":3' | jq -c '.metadata.labels = {"team":"a"}')
	[ "$(apply web "$m2")" = 200 ]
	[ "$(apply_result)" = configured ]
	[ "$(body -c .metadata.labels)" = '{"team":"a","owner":"ops"}' ]
	[ "$(body .spec.replicas)" = 3 ]
	[ "$(body .status.replicas)" = 2 ]
	[ "$(body .metadata.generation)" = 2 ]
	# a scale by someone else takes replicas over: a manifest that stops
	# setting it leaves it alone, one that sets it puts its value back
	[ "$(req PATCH "$NS/deployments/web?fieldManager=scaler" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"replicas":7}}')" = 200 ]
	m3=$(deployment web | jq -c '.metadata.labels = {"team":"a"}')
	[ "$(apply web "$m3")" = 200 ]
	[ "$(body .spec.replicas)" = 7 ]
	[ "$(apply web "$m2")" = 200 ]
	[ "$(body .spec.replicas)" = 3 ]
	# invalid manifests are refused with causes; the URL name must match
	[ "$(apply web "$(deployment web ',"replica":3')")" = 422 ]
	[ "$(body '.details.causes[0].field')" = spec.replica ]
	[ "$(apply other "$m2")" = 400 ]
	# dry run: computed, not written
	rv=$(rv_of "$NS/deployments/web")
	[ "$(apply web "$(deployment web ',"replicas":5')" '?dryRun=All')" = 200 ]
	[ "$(body .spec.replicas)" = 5 ]
	[ "$(rv_of "$NS/deployments/web")" = "$rv" ]
	[ "$(api GET "$NS/deployments/web" | jq .spec.replicas)" = 3 ]
}

@test "apply accepts a YAML body as application/apply-patch+yaml" {
	yaml='apiVersion: keel/v1
kind: Task
metadata:
  name: y
  labels: {app: y}
spec:
  image: busybox
  args: ["a", "b"]'
	[ "$(req PATCH "$NS/tasks/y" -H 'Content-Type: application/apply-patch+yaml' --data-binary "$yaml")" = 201 ]
	[ "$(body -c .spec.args)" = '["a","b"]' ]
	[ "$(body .metadata.labels.app)" = y ]
	[ "$(req PATCH "$NS/tasks/y" -H 'Content-Type: application/apply-patch+yaml' --data-binary "$yaml")" = 200 ]
	[ "$(req PATCH "$NS/tasks/y" -H 'Content-Type: application/apply-patch+yaml' --data-binary $'a: [1\nb: 2')" = 400 ]
	[[ "$(body .message)" == "request body:"* ]]
	# one document that is not a mapping, and two documents
	[ "$(req PATCH "$NS/tasks/y" -H 'Content-Type: application/apply-patch+yaml' --data-binary $'- a\n- b')" = 400 ]
	[ "$(body .message)" = "request body:1:1: an apply body must be a YAML mapping" ]
	[ "$(req PATCH "$NS/tasks/y" -H 'Content-Type: application/apply-patch+yaml' --data-binary $'a: 1\n---\nb: 2')" = 400 ]
	[ "$(body .message)" = "an apply body must be one YAML mapping (got 2 documents)" ]
}

@test "a YAML apply body with a NUL in a string is a 400 naming the field, and stores nothing" {
	yaml='apiVersion: keel/v1
kind: Task
metadata:
  name: z
spec:
  image: "busy\0box"'
	[ "$(req PATCH "$NS/tasks/z" -H 'Content-Type: application/apply-patch+yaml' --data-binary "$yaml")" = 400 ]
	[ "$(body .message)" = "request body:6:3: spec.image: a string must not contain a NUL character" ]
	# before the fix it was stored, and every list of tasks failed with 500 "corrupt data"
	[ "$(req GET "$NS/tasks")" = 200 ]
	[ "$(req GET /apis/keel/v1/tasks)" = 200 ]
	[ "$(req GET "$NS/tasks/z")" = 404 ]
}

@test "list with labelSelector, fieldSelector, limit and continue" {
	for i in 1 2 3 4 5; do
		tier=web
		[ "$i" -gt 3 ] && tier=db
		create_task "t$i" busybox "{\"tier\":\"$tier\",\"n\":\"$i\"}"
	done
	[ "$(req GET "$NS/tasks")" = 200 ]
	[ "$(body .kind)" = TaskList ]
	[ "$(body -c '[.items[].metadata.name]')" = '["t1","t2","t3","t4","t5"]' ]
	[ "$(req GET "$NS/tasks?labelSelector=tier%3Dweb")" = 200 ]
	[ "$(body -c '[.items[].metadata.name]')" = '["t1","t2","t3"]' ]
	[ "$(req GET "$NS/tasks?labelSelector=tier%20notin%20(web),n!=5")" = 200 ]
	[ "$(body -c '[.items[].metadata.name]')" = '["t4"]' ]
	[ "$(req GET "$NS/tasks?fieldSelector=metadata.name%3Dt2")" = 200 ]
	[ "$(body -c '[.items[].metadata.name]')" = '["t2"]' ]
	[ "$(req GET "/apis/keel/v1/tasks?fieldSelector=metadata.namespace%3Ddefault,metadata.name!=t1&labelSelector=tier%3Dweb")" = 200 ]
	[ "$(body -c '[.items[].metadata.name]')" = '["t2","t3"]' ]
	# pages of two
	names=()
	cont=""
	for page in 1 2 3; do
		[ "$(req GET "$NS/tasks?limit=2${cont:+&continue=$cont}")" = 200 ]
		names+=($(body '.items[].metadata.name'))
		cont=$(body '.metadata.continue // empty')
		[ "$page" -lt 3 ] && [ -n "$cont" ]
	done
	[ -z "$cont" ]
	[ "${names[*]}" = "t1 t2 t3 t4 t5" ]
	[ "$(req GET "$NS/tasks?labelSelector=tier%20in%20web")" = 400 ]
	[ "$(body .reason)" = BadRequest ]
	[ "$(req GET "$NS/tasks?limit=-1")" = 400 ]
	[ "$(req GET "$NS/tasks?continue=garbage!")" = 400 ]
}

@test "dryRun=All validates and answers but writes nothing" {
	rv=$(current_rv)
	[ "$(req POST "$NS/tasks?dryRun=All" -d "$(task web)")" = 201 ]
	[ "$(body .metadata.name)" = web ]
	[ "$(req GET "$NS/tasks/web")" = 404 ]
	[ "$(req POST "$NS/tasks?dryRun=All" -d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"w"},"spec":{}}')" = 422 ]
	[ "$(current_rv)" = "$rv" ]
	create_task web
	rv=$(current_rv)
	[ "$(req PATCH "$NS/tasks/web?dryRun=All" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"image":"nginx"}}')" = 200 ]
	[ "$(body .spec.image)" = nginx ]
	[ "$(body .metadata.resourceVersion)" = "$rv" ]
	[ "$(req DELETE "$NS/tasks/web?dryRun=All")" = 200 ]
	[ "$(req GET "$NS/tasks/web")" = 200 ]
	[ "$(body .spec.image)" = busybox ]
	[ "$(current_rv)" = "$rv" ]
	[ "$(req DELETE "$NS/tasks/web?dryRun=yes")" = 400 ]
}

@test "watch from resourceVersion N gets exactly the later changes, in order, then live ones" {
	create_task a
	n=$(current_rv)
	create_task b
	merge "$NS/tasks/a" '{"metadata":{"labels":{"x":"1"}}}'
	api DELETE "$NS/tasks/b" >/dev/null
	watch_events "$NS/tasks?watch=1&resourceVersion=$n&timeoutSeconds=3" >"$BATS_TEST_TMPDIR/w" &
	pids=($!)
	sleep 0.5
	create_task c
	api DELETE "$NS/tasks/a" >/dev/null
	wait "${pids[@]}" # not the server's pid
	run jq -r '.[0] + " " + .[1]' "$BATS_TEST_TMPDIR/w"
	assert_output "ADDED b
MODIFIED a
DELETED b
ADDED c
DELETED a"
	# revisions strictly increase, starting right after N
	run jq -s -r 'map(.[2]) | . == (sort | unique) and .[0] == '"$((n + 1))" "$BATS_TEST_TMPDIR/w"
	assert_output true
	run curl -s -D - -o /dev/null -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 5 "$KEEL_URL$NS/tasks?watch=1&timeoutSeconds=1"
	assert_output --partial 'Content-Type: application/json;stream=watch'
}

@test "watch without resourceVersion starts with ADDED for what exists, then goes live" {
	create_task a busybox '{"app":"x"}'
	create_task b busybox '{"app":"y"}'
	watch_events "$NS/tasks?watch=1&resourceVersion=0&timeoutSeconds=3" >"$BATS_TEST_TMPDIR/all" &
	pids=($!)
	watch_events "$NS/tasks?watch=true&labelSelector=app%3Dx&timeoutSeconds=3" >"$BATS_TEST_TMPDIR/x" &
	pids+=($!)
	watch_events "/apis/keel/v1/namespaces/other/tasks?watch=1&timeoutSeconds=3" >"$BATS_TEST_TMPDIR/other" &
	pids+=($!)
	sleep 0.5
	merge "$NS/tasks/a" '{"spec":{"image":"nginx"}}'
	merge "$NS/tasks/b" '{"spec":{"image":"nginx"}}'
	wait "${pids[@]}" # not the server's pid
	run jq -r '.[0] + " " + .[1]' "$BATS_TEST_TMPDIR/all"
	assert_output "ADDED a
ADDED b
MODIFIED a
MODIFIED b"
	run jq -r '.[0] + " " + .[1]' "$BATS_TEST_TMPDIR/x"
	assert_output "ADDED a
MODIFIED a"
	[ ! -s "$BATS_TEST_TMPDIR/other" ]
}

@test "watches started during a stream of writes see every revision once, without gaps" {
	create_task web
	(for i in $(seq 1 250); do merge "$NS/tasks/web" "{\"metadata\":{\"labels\":{\"n\":\"$i\"}}}"; done) &
	writer=$!
	pids=()
	for i in $(seq 1 12); do
		q="watch=1&timeoutSeconds=60"
		from[$i]=0
		if [ $((i % 2)) = 0 ]; then
			from[$i]=$(current_rv)
			q="$q&resourceVersion=${from[$i]}"
		fi
		curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 70 "$KEEL_URL$NS/tasks?$q" >"$BATS_TEST_TMPDIR/raw$i" &
		pids+=($!)
		sleep 0.05
	done
	wait "$writer"
	final=$(current_rv)
	last_is() { [ "$(grep -v BOOKMARK "$2" | tail -1 | jq -r .object.metadata.resourceVersion)" = "$1" ]; }
	for i in $(seq 1 12); do until_true 20 last_is "$final" "$BATS_TEST_TMPDIR/raw$i"; done
	kill "${pids[@]}"
	wait "${pids[@]}" || true
	for i in $(seq 1 12); do
		jq -c 'select(.type != "BOOKMARK") | [.type, .object.metadata.name, (.object.metadata.resourceVersion|tonumber)]' \
			"$BATS_TEST_TMPDIR/raw$i" >"$BATS_TEST_TMPDIR/w$i" || true # a cut-off last line
	done
	for i in $(seq 1 12); do
		# consecutive revisions up to the last write: nothing lost, nothing twice
		run jq -s -r 'map(.[2]) as $r | ($r | length) > 0 and ([range(0; ($r | length) - 1)] | all($r[.+1] == $r[.] + 1)) and $r[-1] == '"$final" "$BATS_TEST_TMPDIR/w$i"
		[ "$output" = true ] || { cat "$BATS_TEST_TMPDIR/w$i" >&2; false; }
		if [ "${from[$i]}" != 0 ]; then
			[ "$(head -1 "$BATS_TEST_TMPDIR/w$i" | jq '.[2]')" = $((from[$i] + 1)) ]
		fi
	done
	# rv=0 watches start with the object as ADDED
	[ "$(head -1 "$BATS_TEST_TMPDIR/w1" | jq -r '.[0]')" = ADDED ]
}

@test "a burst of concurrent writes reaches 50 watches once each, in revision order, several events to a chunk" {
	# the hub fans a round of commits out at once and a stream's reader packs
	# the queued events into one chunk: order must hold across chunk bounds
	run python3 "$KEEL_SRC/tests/e2e/watch_burst.py" "$KEEL_URL" "$KEEL_TOKEN_VALUE" \
		--watches 50 --writes 400 --writers 16
	echo "$output"
	assert_success
	assert_output --partial '50 watches, 400 writes from 16 writers: 20000 events in'
}

@test "idle watches get BOOKMARKs carrying the current resourceVersion" {
	create_task a
	rv=$(current_rv)
	out=$(curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 10 "$KEEL_URL$NS/tasks?watch=1&resourceVersion=$rv&timeoutSeconds=4")
	n=$(jq -s '[.[] | select(.type == "BOOKMARK")] | length' <<<"$out")
	[ "$n" -ge 2 ]
	[ "$(jq -s -r '.[0].object.metadata.resourceVersion' <<<"$out")" = "$rv" ]
	[ "$(jq -s -r '.[0].object.kind' <<<"$out")" = Task ]
}

@test "a watch from a compacted revision is 410 Gone" {
	keel_server_stop
	keel_server_start --controllers=none --history 5
	for i in $(seq 1 20); do create_task "t$i"; done
	run curl -s -w '\n%{http_code}' -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 5 "$KEEL_URL$NS/tasks?watch=1&resourceVersion=1"
	assert_line --index 1 410
	[ "$(head -1 <<<"$output" | jq -r .reason)" = Gone ]
	[ "$(head -1 <<<"$output" | jq -r .code)" = 410 ]
	# a recent revision still works
	rv=$(current_rv)
	run watch_events "$NS/tasks?watch=1&resourceVersion=$((rv - 2))&timeoutSeconds=1"
	assert_success
	[ "${#lines[@]}" = 2 ]
}

@test "a watcher that does not read is told it is too slow and cut off; others are not held up" {
	port=${KEEL_URL##*:}
	exec {slow}<>"/dev/tcp/127.0.0.1/$port"
	printf 'GET %s/tasks?watch=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' "$NS" "$KEEL_TOKEN_VALUE" >&$slow
	curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 90 "$KEEL_URL$NS/tasks?watch=1&timeoutSeconds=80" >"$BATS_TEST_TMPDIR/fast" &
	pids=($!)
	sleep 0.3
	big=$(head -c 200000 /dev/zero | tr '\0' a)
	for i in $(seq 1 120); do
		printf '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"t%d"},"spec":{"image":"b","args":["%s"]}}' "$i" "$big" >"$BATS_TEST_TMPDIR/obj"
		[ "$(req POST "$NS/tasks" --data-binary @"$BATS_TEST_TMPDIR/obj")" = 201 ]
	done
	# the slow stream ends with an ERROR event (410) once it is read
	error=""
	while IFS= read -r -t 10 line <&$slow; do
		case $line in *'"type":"ERROR"'*) error=$line; break ;; esac
	done
	exec {slow}>&-
	[[ "$error" == *'"code":410'* ]]
	[[ "$error" == *'watch too slow'* ]]
	# the reading watcher got everything
	fast_has_all() { [ "$(grep -c '"type":"ADDED"' "$BATS_TEST_TMPDIR/fast")" = 120 ]; }
	until_true 30 fast_has_all
	# cleanup: on a loaded machine (bash reads the slow stream a byte at a
	# time) the fast watch may already have reached its timeoutSeconds
	kill "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" || true
}

@test "past --max-watchers a watch is 429 TooManyRequests" {
	keel_server_stop
	keel_server_start --controllers=none --max-watchers 2
	pids=()
	for i in 1 2; do
		curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 10 "$KEEL_URL$NS/tasks?watch=1&timeoutSeconds=3" >/dev/null &
		pids+=($!)
	done
	for i in $(seq 1 50); do
		[ "$(api GET /metrics | awk '/^keel_watchers /{print $2}')" = 2 ] && break
		sleep 0.1
	done
	[ "$(req GET "$NS/tasks?watch=1&timeoutSeconds=1")" = 429 ]
	[ "$(body .reason)" = TooManyRequests ]
	[ "$(body .message)" = "too many watchers (2 open, --max-watchers 2); retry later" ]
	api GET /metrics | grep -qx 'keel_limit_rejections_total{limit="watches"} 1'
	[ "$(req GET "$NS/tasks")" = 200 ]
	wait "${pids[@]}"
	[ "$(req GET "$NS/tasks?watch=1&timeoutSeconds=1")" = 200 ]
}

@test "a body over 3 MiB is 413, with or without Content-Length, naming --max-body; counted" {
	head -c $((3 * 1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' >"$BATS_TEST_TMPDIR/big"
	[ "$(req POST "$NS/tasks" --data-binary @"$BATS_TEST_TMPDIR/big")" = 413 ]
	[ "$(body .reason)" = RequestEntityTooLarge ]
	[ "$(body .message)" = "request body too large: Content-Length 3145738 is over the limit of 3Mi (--max-body)" ]
	[ "$(req POST "$NS/tasks" -H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/big")" = 413 ]
	[ "$(body .reason)" = RequestEntityTooLarge ]
	[ "$(body .message)" = "request body too large: over the limit of 3Mi (--max-body)" ]
	api GET /metrics | grep -qx 'keel_limit_rejections_total{limit="body"} 2'
	# an object over 1.5 MiB once stored is refused too
	big=$(head -c 1700000 /dev/zero | tr '\0' a)
	printf '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"big"},"spec":{"image":"b","args":["%s"]}}' "$big" >"$BATS_TEST_TMPDIR/obj"
	[ "$(req POST "$NS/tasks" --data-binary @"$BATS_TEST_TMPDIR/obj")" = 413 ]
	[[ "$(body .message)" == "object is too large: "*" bytes serialised, over the limit of 1536Ki (--max-object)" ]]
	api GET /metrics | grep -qx 'keel_limit_rejections_total{limit="object"} 1'
	# the server is fine afterwards
	[ "$(req GET "$NS/tasks")" = 200 ]
}

# until_true SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
until_true() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
watchers() { api GET /metrics | awk '/^keel_watchers /{print $2}'; }
watchers_at_least() { [ "$(watchers)" -ge "$1" ]; }
watchers_are() { [ "$(watchers)" = "$1" ]; }
all_have_added() { # all_have_added N FILES...: each file has N ADDED events
	local n=$1 f
	shift
	for f in "$@"; do
		[ "$(jq -s '[.[] | select(.type == "ADDED")] | length' "$f")" = "$n" ] || return 1
	done
}

@test "100 concurrent watchers do not starve other requests" {
	pids=()
	files=()
	for i in $(seq 1 100); do
		curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" --max-time 60 \
			"$KEEL_URL$NS/tasks?watch=1&timeoutSeconds=50" >"$BATS_TEST_TMPDIR/w$i" &
		pids+=($!)
		files+=("$BATS_TEST_TMPDIR/w$i")
	done
	until_true 10 watchers_at_least 100
	start=$(date +%s%N)
	for i in $(seq 1 20); do
		[ "$(req POST "$NS/tasks" -d "$(task "t$i")")" = 201 ]
	done
	ms=$((($(date +%s%N) - start) / 1000000))
	[ "$ms" -lt 5000 ]
	until_true 20 all_have_added 20 "${files[@]}"
	# clients that go away are noticed (at the next bookmark) and dropped
	kill "${pids[@]}"
	wait "${pids[@]}" || true
	until_true 10 watchers_are 0
}

@test "binding sets nodeName and phase once; rebinding elsewhere is 409" {
	create_task web
	[ "$(req POST /apis/keel/v1/nodes -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"n1"}}')" = 201 ]
	[ "$(req POST /apis/keel/v1/nodes -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"n2"}}')" = 201 ]
	binding='{"apiVersion":"keel/v1","kind":"Binding","metadata":{"name":"web"},"target":{"name":"n1"}}'
	[ "$(req POST "$NS/tasks/web/binding" -d "$binding")" = 201 ]
	[ "$(body .spec.nodeName)" = n1 ]
	[ "$(body .status.phase)" = Scheduled ]
	[ "$(req GET "$NS/tasks?fieldSelector=spec.nodeName%3Dn1")" = 200 ]
	[ "$(body '.items | length')" = 1 ]
	[ "$(req POST "$NS/tasks/web/binding" -d "$binding")" = 200 ]
	[ "$(req POST "$NS/tasks/web/binding" -d "${binding/n1/n2}")" = 409 ]
	[ "$(body .reason)" = Conflict ]
	[[ "$(body .message)" == *'already bound to node "n1"'* ]]
	[ "$(req POST "$NS/tasks/web/binding" -d "${binding/n1/n9}")" = 404 ]
	[ "$(body .message)" = 'nodes "n9" not found' ]
	[ "$(req POST "$NS/tasks/nope/binding" -d '{"target":{"name":"n1"}}')" = 404 ]
	[ "$(req POST "$NS/tasks/web/binding" -d '{"target":{}}')" = 422 ]
	[ "$(req GET "$NS/tasks/web")" = 200 ]
	[ "$(body .spec.nodeName)" = n1 ]
}

@test "delete returns the object, then it is gone; finalizers hold it with a deletionTimestamp" {
	create_task web
	[ "$(req DELETE "$NS/tasks/web")" = 200 ]
	[ "$(body .metadata.name)" = web ]
	[ "$(req GET "$NS/tasks/web")" = 404 ]
	[ "$(req DELETE "$NS/tasks/web")" = 404 ]
	api POST "$NS/tasks" -d "$(task held | jq -c '.metadata.finalizers = ["keel.io/test"]')" >/dev/null
	[ "$(req DELETE "$NS/tasks/held")" = 200 ]
	[ -n "$(body '.metadata.deletionTimestamp // empty')" ]
	[ "$(req GET "$NS/tasks/held")" = 200 ]
	[ -n "$(body '.metadata.deletionTimestamp // empty')" ]
	# removing the last finalizer completes the deletion
	[ "$(req PATCH "$NS/tasks/held" -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"finalizers":null}}')" = 200 ]
	[ "$(req GET "$NS/tasks/held")" = 404 ]
	[ "$(req DELETE "$NS/tasks/x?propagationPolicy=Sideways")" = 400 ]
}

@test "namespaces: default cannot go, a non-empty one turns Terminating, an empty one goes" {
	[ "$(req DELETE /apis/keel/v1/namespaces/default)" = 403 ]
	[ "$(body .reason)" = Forbidden ]
	[ "$(req POST /apis/keel/v1/namespaces -d '{"apiVersion":"keel/v1","kind":"Namespace","metadata":{"name":"shop"}}')" = 201 ]
	[ "$(req POST /apis/keel/v1/namespaces/shop/tasks -d "$(task web)")" = 201 ]
	[ "$(body .metadata.namespace)" = shop ]
	# as Kubernetes: a non-empty namespace is marked for deletion (the gc
	# controller empties it) and takes no new objects meanwhile
	[ "$(req DELETE /apis/keel/v1/namespaces/shop)" = 200 ]
	[ "$(body .status.phase)" = Terminating ]
	[ "$(body .metadata.deletionTimestamp)" != null ]
	[ "$(body -c .metadata.finalizers)" = '["keel/namespace"]' ]
	[ "$(req POST /apis/keel/v1/namespaces/shop/tasks -d "$(task db)")" = 403 ]
	[ "$(body .reason)" = Forbidden ]
	[ "$(body .message)" = 'unable to create new content in namespace shop because it is being terminated' ]
	# emptied by hand here (gc may have got there first): the namespace
	# goes with its last finalizer
	code=$(req DELETE /apis/keel/v1/namespaces/shop/tasks/web)
	[ "$code" = 200 ] || [ "$code" = 404 ]
	code=$(req PATCH /apis/keel/v1/namespaces/shop -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"finalizers":[]}}')
	[ "$code" = 200 ] || [ "$code" = 404 ]
	[ "$(req GET /apis/keel/v1/namespaces/shop)" = 404 ]
	# an empty one goes at once
	[ "$(req POST /apis/keel/v1/namespaces -d '{"apiVersion":"keel/v1","kind":"Namespace","metadata":{"name":"shop"}}')" = 201 ]
	[ "$(req DELETE /apis/keel/v1/namespaces/shop)" = 200 ]
	[ "$(req GET /apis/keel/v1/namespaces/shop)" = 404 ]
	[ "$(req GET /apis/keel/v1/namespaces/default)" = 200 ]
	[ "$(body .status.phase)" = Active ]
}

@test "a restart keeps the objects, the revision and the token" {
	create_task a
	create_task b
	merge "$NS/tasks/a" '{"spec":{"image":"nginx"}}'
	before=$(api GET "$NS/tasks" | jq -c .)
	token=$KEEL_TOKEN_VALUE
	keel_server_stop
	grep -q "stopped cleanly" "$SERVER_LOG"
	keel_server_start --controllers=none
	[ "$KEEL_TOKEN_VALUE" = "$token" ]
	if on_lmdb; then
		[ "$(api GET "$NS/tasks" | jq -c .)" = "$before" ]
	else # the objects as they were; the list's revision is etcd's, moved by the start
		[ "$(api GET "$NS/tasks" | jq -c .items)" = "$(jq -c .items <<<"$before")" ]
		[ "$(api GET "$NS/tasks" | jq -r .metadata.resourceVersion)" -ge "$(jq -r .metadata.resourceVersion <<<"$before")" ]
	fi
	create_task c
	[ "$(rv_of "$NS/tasks/c")" -gt "$(jq -r .metadata.resourceVersion <<<"$before")" ]
}

@test "a second server on the same data directory exits 1 with a clear message" {
	lmdb_only "the data directory's flock guards the LMDB store; on etcd several servers share one store by design"
	run timeout 10 "$KEEL" server --data-dir "$KEEL_DATA" --listen 127.0.0.1:0
	assert_failure 1
	assert_output --partial "$KEEL_DATA"
	[ "${#lines[@]}" -le 2 ]
	[ "$(req GET "$NS/tasks")" = 200 ]
}

@test "a full store is 507 InsufficientStorage and reads keep working" {
	lmdb_only "--store-max-bytes is the LMDB map size; etcd's quota is its own --quota-backend-bytes"
	keel_server_stop
	KEEL_DATA=$BATS_TEST_TMPDIR/small
	keel_server_start --controllers=none --store-max-bytes 1Mi
	big=$(head -c 60000 /dev/zero | tr '\0' a)
	code=""
	for i in $(seq 1 60); do
		printf '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"t%d"},"spec":{"image":"b","args":["%s"]}}' "$i" "$big" >"$BATS_TEST_TMPDIR/obj"
		code=$(req POST "$NS/tasks" --data-binary @"$BATS_TEST_TMPDIR/obj")
		[ "$code" = 201 ] || break
	done
	[ "$code" = 507 ]
	[ "$(body .reason)" = InsufficientStorage ]
	[ "$(req GET "$NS/tasks/t1")" = 200 ]
	[ "$(req GET "$NS/tasks")" = 200 ]
	run curl -s "$KEEL_URL/readyz"
	assert_output ok
}

@test "metrics expose requests, latency, store revisions and watchers" {
	create_task a
	run api GET /metrics
	assert_line --regexp '^keel_http_requests_total\{method="POST",code="201"\} [0-9]+$'
	assert_line --regexp '^keel_http_request_duration_seconds_bucket\{method="GET",le="\+Inf"\} [0-9]+$'
	assert_line "keel_store_revision $(current_rv)"
	assert_line --regexp '^keel_store_compacted_revision [0-9]+$'
	assert_line --regexp '^keel_store_commits_total [0-9]+$'
	assert_line --regexp '^keel_store_writes_total [0-9]+$'
	assert_line 'keel_watchers 0'
}

@test "flags: --help, unknown flags, bad values; a token file" {
	run "$KEEL" server --help
	assert_success
	assert_output --partial "--bookmark-interval"
	assert_output --partial "Example"
	run "$KEEL" server --no-such-flag
	assert_failure 2
	assert_output 'keel server: unknown flag "--no-such-flag" for "keel server" (see keel server --help)'
	run "$KEEL" server --listn 127.0.0.1:0
	assert_failure 2
	assert_output 'keel server: unknown flag "--listn" for "keel server"; did you mean "--listen"?'
	run "$KEEL" server --bookmark-interval 1x
	assert_failure 2
	assert_output --partial "invalid duration"
	run "$KEEL" server --store-max-bytes lots
	assert_failure 2
	keel_server_stop
	printf '# tokens\nadmintok,alice\n\nnodetok,n1,node\n' >"$BATS_TEST_TMPDIR/tokens"
	KEEL_DATA=$BATS_TEST_TMPDIR/tokdata
	keel_server_start --controllers=none --token-file "$BATS_TEST_TMPDIR/tokens" || true
	[ "$(jq -r .token "$KEEL_DATA/config")" = admintok ]
	[ ! -e "$KEEL_DATA/admin.token" ]
	run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nodetok' "$KEEL_URL$NS/tasks"
	assert_output 200
	run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: bearer admintok' "$KEEL_URL$NS/tasks"
	assert_output 200
	printf 'tok,alice,root\n' >"$BATS_TEST_TMPDIR/badtokens"
	run timeout 10 "$KEEL" server --data-dir "$BATS_TEST_TMPDIR/other" --listen 127.0.0.1:0 --token-file "$BATS_TEST_TMPDIR/badtokens"
	assert_failure 1
	assert_output --partial 'badtokens:1: unknown role "root"'
}

@test "an encoded NUL in a path segment or query value is a 400, never a truncation" {
	create_task victim
	[ "$(req DELETE "$NS/tasks/victim%00junk")" = 400 ]
	[ "$(body .reason)" = BadRequest ]
	[[ "$(body .message)" == *"invalid %00 in the URL"* ]]
	[ "$(req GET "$NS/tasks/victim")" = 200 ]
	[ "$(req GET "$NS/tasks?labelSelector=app%3Dx%00junk")" = 400 ]
	[ "$(body .reason)" = BadRequest ]
	[[ "$(body .message)" == *"invalid %00 in the URL"* ]]
	[[ "$(body .message)" == *labelSelector* ]]
	[ "$(req GET "/apis/keel/v1/namespaces/def%00ault/tasks")" = 400 ]
}

@test "invalid UTF-8 in the URL: 404 for an unknown path, 400 for a name or query value" {
	[ "$(req GET /%ff)" = 404 ]
	[ "$(body .kind)" = Status ]
	[ "$(body .reason)" = NotFound ]
	[ "$(req GET /apis/keel/v1/%ff)" = 404 ]
	[ "$(body .reason)" = NotFound ]
	local q
	for q in labelSelector fieldSelector continue limit watch resourceVersion fieldManager; do
		[ "$(req GET "$NS/tasks?$q=%ff")" = 400 ]
		[ "$(body .reason)" = BadRequest ]
		[[ "$(body .message)" == *"$q"*"not valid UTF-8"* ]]
	done
	[ "$(req POST "$NS/tasks?fieldManager=%ff" -d "$(task t1)")" = 400 ]
	[ "$(req GET "$NS/tasks/%ff")" = 400 ]
	[ "$(body .reason)" = BadRequest ]
	[[ "$(body .message)" == *'segment "%ff": not valid UTF-8'* ]]
	[ "$(req GET "/apis/keel/v1/namespaces/a%ffb/tasks")" = 400 ]
	[ "$(req GET "$NS/tasks")" = 200 ]
	[ "$(req GET "$NS/tasks?labelSelector=app%3D%C3%A9")" = 400 ]
	[[ "$(body .message)" != *"UTF-8"* ]]
}

@test "a watch from a resourceVersion beyond the current revision is a 504 Timeout" {
	create_task a
	local rv
	rv=$(current_rv)
	[ "$(req GET "$NS/tasks?watch=1&resourceVersion=99999999&timeoutSeconds=2")" = 504 ]
	[ "$(body .kind)" = Status ]
	[ "$(body .reason)" = Timeout ]
	[ "$(body .message)" = "Too large resource version: 99999999, current: $rv" ]
	# the current revision itself is fine, and sees what comes next
	watch_events "$NS/tasks?watch=1&resourceVersion=$rv&timeoutSeconds=3" >"$BATS_TEST_TMPDIR/ev" &
	local pid=$!
	sleep 1
	create_task b
	wait "$pid"
	[ "$(jq -r '.[1]' "$BATS_TEST_TMPDIR/ev")" = b ]
}

@test "a created Task starts with status.phase Pending, so a field selector finds it" {
	[ "$(req POST "$NS/tasks" -d "$(task p1)")" = 201 ]
	[ "$(body .status.phase)" = Pending ]
	[ "$(req PATCH "$NS/tasks/p2?fieldManager=t" -H 'Content-Type: application/apply-patch+yaml' -d "$(task p2)")" = 201 ]
	[ "$(body .status.phase)" = Pending ]
	[ "$(req GET "$NS/tasks?fieldSelector=status.phase%3DPending")" = 200 ]
	[ "$(body -c '[.items[].metadata.name]')" = '["p1","p2"]' ]
	# a status in the create body is still ignored
	[ "$(req POST "$NS/tasks" -d "$(task p3 | jq -c '.status = {"phase":"Running"}')")" = 201 ]
	[ "$(body .status.phase)" = Pending ]
}

@test "a binding whose target.kind is not Node is a 422 and binds nothing" {
	create_task web
	[ "$(req POST /apis/keel/v1/nodes -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"n1"}}')" = 201 ]
	[ "$(req POST "$NS/tasks/web/binding" -d '{"kind":"Binding","metadata":{"name":"web"},"target":{"kind":"Pod","name":"n1"}}')" = 422 ]
	[ "$(body .reason)" = Invalid ]
	[ "$(body '.details.causes[0].field')" = target.kind ]
	[[ "$(body .message)" == *'target.kind: Unsupported value "Pod"'* ]]
	[ "$(req GET "$NS/tasks/web")" = 200 ]
	[ "$(body '.spec.nodeName // ""')" = "" ]
	[ "$(req POST "$NS/tasks/web/binding" -d '{"kind":"Binding","metadata":{"name":"web"},"target":{"kind":"Node","name":"n1"}}')" = 201 ]
	[ "$(body .spec.nodeName)" = n1 ]
}

@test "spec.nodeName is immutable once set; setting it when empty is allowed" {
	[ "$(req POST "$NS/tasks" -d "$(task web | jq -c '.spec.nodeName = "n1"')")" = 201 ]
	[ "$(body .spec.nodeName)" = n1 ]
	create_task other
	[ "$(req PATCH "$NS/tasks/other" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"nodeName":"n2"}}')" = 200 ]
	[ "$(body .spec.nodeName)" = n2 ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"nodeName":"n9"}}')" = 422 ]
	[ "$(body .reason)" = Invalid ]
	[[ "$(body .message)" == *"spec.nodeName: field is immutable once set"* ]]
	[ "$(req PUT "$NS/tasks/web" -d "$(api GET "$NS/tasks/web" | jq -c '.spec.nodeName = "n9"')")" = 422 ]
	[ "$(req PATCH "$NS/tasks/web?fieldManager=t" -H 'Content-Type: application/apply-patch+yaml' -d "$(task web | jq -c '.spec.nodeName = "n9"')")" = 422 ]
	[ "$(req GET "$NS/tasks/web")" = 200 ]
	[ "$(body .spec.nodeName)" = n1 ]
	[ "$(req PATCH "$NS/tasks/web" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"image":"nginx"}}')" = 200 ]
}

@test "a lease held by one holder is refused to another (409 naming the holder) until it expires" {
	L=/apis/keel/v1/leases/n1
	[ "$(req PUT $L -d '{"spec":{"holderIdentity":"agent-a","leaseDurationSeconds":2}}')" = 200 ]
	[ "$(body .spec.holderIdentity)" = agent-a ]
	[ "$(body .spec.leaseDurationSeconds)" = 2 ]
	acquired=$(body .spec.acquireTime)
	[ "$(req PUT $L -d '{"spec":{"holderIdentity":"agent-b","leaseDurationSeconds":2}}')" = 409 ]
	[ "$(body .reason)" = Conflict ]
	body .message | grep -q '^lease n1 is held by agent-a (renewed [0-9]*s ago, expires in [0-9]*s); not granted to agent-b$'
	# the holder renews; its acquireTime stays
	sleep 1
	[ "$(req PUT $L -d '{"spec":{"holderIdentity":"agent-a","leaseDurationSeconds":2}}')" = 200 ]
	[ "$(body .spec.acquireTime)" = "$acquired" ]
	# expired: the other holder gets it
	sleep 3
	[ "$(req PUT $L -d '{"spec":{"holderIdentity":"agent-b"}}')" = 200 ]
	[ "$(body .spec.holderIdentity)" = agent-b ]
	[ "$(body .spec.leaseDurationSeconds)" = 40 ]
	# a body-less renewal (older agents) holds it as the node's name
	[ "$(req PUT /apis/keel/v1/leases/n2)" = 200 ]
	[ "$(body .spec.holderIdentity)" = n2 ]
	[ "$(req PUT $L -d '{"spec":{"leaseDurationSeconds":0}}')" = 400 ]
	[ "$(req PUT $L -d '{"spec":{"holderIdentity":7}}')" = 400 ]
	[ "$(req PUT $L -d 'not json')" = 400 ]
}
