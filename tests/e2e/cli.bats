#!/usr/bin/env bats
# The CLI end to end: apply/get/describe/delete/diff/convert/version against
# a real `keel server` with its LMDB store in the test's temp directory
# (helpers.bash starts it on a free port and exports KEEL_CONFIG).

bats_require_minimum_version 1.5.0
load helpers

setup() {
	keel_server_start --controllers=none
	M=$BATS_TEST_TMPDIR/m
	mkdir -p "$M"
}
teardown() { keel_server_stop; }

# Writes the usual three manifests into $M: a Namespace, a Deployment in it
# and a Task in the default namespace.
write_app() {
	cat >"$M/10-deploy.yaml" <<'EOF'
apiVersion: keel/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      image: nginx:1.25
EOF
	cat >"$M/20-task.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata:
  name: hello
  labels:
    app: hello
    tier: batch
spec:
  image: busybox
  command: ["echo", "hi"]
  restartPolicy: OnFailure
EOF
	# Listed last on purpose: apply must still create it first.
	cat >"$M/30-ns.yaml" <<'EOF'
apiVersion: keel/v1
kind: Namespace
metadata:
  name: shop
EOF
}

# Prints "NAME RV" of every object of a kind, sorted, to compare revisions.
rvs() { keel get "$1" -A -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.resourceVersion)"' | sort; }

@test "apply a directory: Namespace first, then file order; get shows the objects" {
	write_app
	run keel apply -f "$M"
	assert_success
	assert_equal "${lines[0]}" "namespace/shop created"
	assert_equal "${lines[1]}" "deployment/web created"
	assert_equal "${lines[2]}" "task/hello created"
	assert_equal "${#lines[@]}" 3

	run keel get tasks
	assert_success
	assert_line --index 0 --regexp '^NAME +READY +STATUS +RESTARTS +AGE$'
	assert_line --index 1 --regexp '^hello +0/1 +Pending +0 +[0-9]+s$'

	run keel get deployments -n shop
	assert_success
	assert_line --index 0 --regexp '^NAME +READY +UP-TO-DATE +AVAILABLE +AGE$'
	assert_line --index 1 --regexp '^web +0/2 +0 +0 +[0-9]+s$'

	run keel get ns
	assert_success
	assert_line --regexp '^shop +Active +[0-9]+s$'
	assert_line --regexp '^default +Active +'
}

@test "re-apply writes nothing; an edit is configured" {
	write_app
	keel apply -f "$M" >/dev/null
	before_tasks=$(rvs tasks)
	before_deploy=$(rvs deployments)
	list_rv=$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)

	run keel apply -f "$M"
	assert_success
	assert_equal "${#lines[@]}" 3
	for l in "${lines[@]}"; do [[ "$l" == *" unchanged" ]] || fail "not unchanged: $l"; done
	assert_equal "$(rvs tasks)" "$before_tasks"
	assert_equal "$(rvs deployments)" "$before_deploy"
	assert_equal "$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)" "$list_rv"

	sed -i 's/replicas: 2/replicas: 3/' "$M/10-deploy.yaml"
	run keel apply -f "$M"
	assert_success
	assert_line "namespace/shop unchanged"
	assert_line "deployment/web configured"
	assert_line "task/hello unchanged"
	run keel get deploy web -n shop -o json
	assert_equal "$(echo "$output" | jq .spec.replicas)" 3
}

@test "apply --dry-run writes nothing and says so" {
	write_app
	run keel apply -f "$M" --dry-run
	assert_success
	assert_line "namespace/shop created (dry run)"
	assert_line --partial 'deployment/web created (dry run; namespace "shop" does not exist yet'
	assert_line "task/hello created (dry run)"
	run keel get ns shop
	assert_failure 1
	assert_output --partial 'Error from server (NotFound)'
}

@test "apply from stdin, -n sets the namespace, a conflicting -n is an error" {
	write_app
	keel apply -f "$M/30-ns.yaml" >/dev/null
	run bash -c "cat '$M/20-task.yaml' | '$KEEL' apply -f - -n shop"
	assert_success
	assert_output "task/hello created"
	run keel get task hello -n shop -o name
	assert_output "task/hello"

	run keel apply -f "$M/10-deploy.yaml" -n default
	assert_failure 1
	assert_output --partial "$M/10-deploy.yaml:5:"
	assert_output --partial 'does not match'
	run --separate-stderr keel get deploy -A -o name
	assert_output ""
}

@test "invalid manifests: FILE:LINE messages, exit 1, and nothing is written" {
	write_app
	cat >"$M/40-bad.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata:
  name: bad
spec:
  image: busybox
  restartPolicy: Always
  resources:
    requests:
      cpu: 12x
---
apiVersion: keel/v1
kind: Deployment
metadata:
  name: typo
spec:
  replica: 3
  template:
    metadata:
      labels: {app: typo}
    spec:
      image: nginx
EOF
	run keel apply -f "$M"
	assert_failure 1
	assert_output --partial "$M/40-bad.yaml:10:"
	assert_output --partial 'invalid quantity "12x"'
	assert_output --partial "$M/40-bad.yaml:17:3: spec.replica: unknown field, did you mean spec.replicas?"
	assert_output --partial 'nothing was applied'
	refute_output --partial 'created'
	run keel get ns shop
	assert_failure 1
	run --separate-stderr keel get tasks -A -o name
	assert_output ""
}

@test "YAML syntax errors and duplicate keys name the file and line; nothing is written" {
	write_app
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: x\nspec: {}\n' >"$M/50-syntax.yaml"
	run keel apply -f "$M"
	assert_failure 1
	assert_output --regexp "$M/50-syntax.yaml:[0-9]+:[0-9]+: "
	run --separate-stderr keel get tasks -A -o name
	assert_output ""

	rm "$M/50-syntax.yaml"
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: d\nspec:\n  image: a\n  image: b\n' >"$M/60-dup.yaml"
	run keel apply -f "$M"
	assert_failure 1
	assert_output --partial "$M/60-dup.yaml:7:"
	assert_output --partial 'duplicate key "image"'
	run keel get ns shop
	assert_failure 1
}

@test "unknown kind, not a mapping, no apiVersion: errors at FILE:LINE" {
	printf 'apiVersion: keel/v1\nkind: Taks\nmetadata: {name: x}\n---\n- a list\n---\nkind: Task\nmetadata: {name: y}\nspec: {image: a}\n' >"$M/x.yaml"
	run keel apply -f "$M/x.yaml"
	assert_failure 1
	assert_output --partial "$M/x.yaml:2:"
	assert_output --partial 'unknown kind "Taks", did you mean "Task"?'
	assert_output --partial "$M/x.yaml:5:1: a manifest must be a mapping"
	assert_output --partial 'apiVersion: Required value'
}

@test "a YAML 1.1 boolean-looking plain scalar warns with file:line" {
	cat >"$M/t.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata:
  name: warned
  labels:
    debug: yes
spec:
  image: busybox
EOF
	run keel apply -f "$M/t.yaml"
	assert_success
	assert_output --partial "$M/t.yaml:6:12: warning: "
	assert_output --partial '"yes"'
	assert_line "task/warned created"
	run keel get task warned -o json
	assert_equal "$(echo "$output" | jq -r .metadata.labels.debug)" "yes"
}

@test "get -o json|yaml|name|wide, -l, --field-selector, -A, managedFields hidden" {
	write_app
	keel apply -f "$M" >/dev/null
	cat >"$M/more.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata:
  name: other
  namespace: shop
  labels: {app: other}
spec:
  image: alpine
EOF
	keel apply -f "$M/more.yaml" >/dev/null

	run keel get tasks -o json
	assert_success
	assert_equal "$(echo "$output" | jq -r .kind)" "TaskList"
	assert_equal "$(echo "$output" | jq -r '.items | length')" 1
	assert_equal "$(echo "$output" | jq -r '.metadata.resourceVersion | test("^[0-9]+$")')" true
	assert_equal "$(echo "$output" | jq '[.items[].metadata.managedFields] | map(select(. != null)) | length')" 0

	run keel get task hello -o json --show-managed-fields
	assert_equal "$(echo "$output" | jq -r .kind)" "Task"
	assert_equal "$(echo "$output" | jq -r '.metadata.managedFields[0].manager')" "keel-apply"

	run keel get task hello -o yaml
	assert_success
	assert_line "kind: Task"
	assert_line "  name: hello"
	refute_output --partial managedFields

	run keel get tasks -A -o name
	assert_success
	assert_output "task/hello
task/other"

	run keel get tasks -A
	assert_line --index 0 --regexp '^NAMESPACE +NAME +READY +STATUS +RESTARTS +AGE$'
	assert_line --regexp '^shop +other +0/1 +Pending '

	run keel get tasks -o wide
	assert_line --index 0 --regexp '^NAME +READY +STATUS +RESTARTS +AGE +NODE +PORTS +IMAGE$'
	assert_line --index 1 --regexp '^hello .* <none> +<none> +busybox$'

	run keel get deploy -n shop -o wide
	assert_line --index 1 --regexp '^web .* nginx:1.25 +app=web$'

	run keel get tasks -A -l app=other -o name
	assert_output "task/other"
	run keel get tasks -A -l 'tier in (batch)' -o name
	assert_output "task/hello"
	run keel get tasks -A --field-selector metadata.namespace=shop -o name
	assert_output "task/other"

	run keel get tasks -n nowhere
	assert_success
	assert_output "No resources found in nowhere namespace."
}

@test "get -w prints the list, then a line per change" {
	write_app
	keel apply -f "$M/20-task.yaml" >/dev/null
	out=$BATS_TEST_TMPDIR/watch.out
	timeout 6 "$KEEL" get tasks -w -o name >"$out" 2>&1 &
	wpid=$!
	sleep 1.5
	sed 's/name: hello/name: second/' "$M/20-task.yaml" | keel apply -f - >/dev/null
	keel delete task hello >/dev/null
	wait $wpid || true
	run cat "$out"
	assert_line --index 0 "task/hello"
	assert_line "task/second"
	assert_equal "$(grep -c '^task/hello$' "$out")" 2   # the list, then DELETED
}

@test "describe shows metadata, spec and the events about the object" {
	write_app
	keel apply -f "$M" >/dev/null
	api POST /apis/keel/v1/namespaces/default/events -d '{"apiVersion":"keel/v1","kind":"Event","metadata":{"name":"hello.1"},"involvedObject":{"kind":"Task","name":"hello","namespace":"default"},"reason":"FailedScheduling","message":"0/3 nodes fit: 2 insufficient memory","type":"Warning","source":{"component":"scheduler"}}' >/dev/null
	run keel describe task hello
	assert_success
	assert_line --regexp '^Name: +hello$'
	assert_line --regexp '^Namespace: +default$'
	assert_line --regexp '^Labels: +app=hello$'
	assert_line --regexp '^ +tier=batch$'
	assert_line '  image: busybox'
	assert_line 'Events:'
	assert_line --regexp '^  Warning +FailedScheduling +[0-9]+s +scheduler +0/3 nodes fit: 2 insufficient memory$'

	run keel describe deploy web -n shop
	assert_success
	assert_line --regexp '^Events: +<none>$'

	run keel describe task nope
	assert_failure 1
	assert_output --partial 'Error from server (NotFound)'
}

@test "delete by name and by manifest (reverse order); NotFound; --ignore-not-found" {
	write_app
	keel apply -f "$M" >/dev/null
	run keel delete task hello
	assert_success
	assert_output "task/hello deleted"
	run keel delete task hello
	assert_failure 1
	assert_output 'Error from server (NotFound): tasks "hello" not found'
	run keel delete task hello --ignore-not-found
	assert_success
	assert_output ""

	run keel delete -f "$M" --ignore-not-found
	assert_success
	assert_equal "${lines[0]}" "deployment/web deleted"
	assert_equal "${lines[1]}" "namespace/shop deleted"
	run --separate-stderr keel get deploy -A -o name
	assert_output ""

	run keel delete tsk x
	assert_failure 2
	assert_output --partial 'did you mean "tasks"?'
}

@test "delete --dry-run keeps the object; --cascade is passed on; get -o yaml of a list" {
	write_app
	keel apply -f "$M" >/dev/null
	run keel delete deploy web -n shop --dry-run --cascade=orphan
	assert_success
	assert_output "deployment/web deleted (dry run)"
	run keel get deploy web -n shop -o name
	assert_output "deployment/web"
	run keel get deploy -n shop -o yaml
	assert_success
	assert_line "kind: DeploymentList"
	assert_line "items:"
	assert_line --partial "  name: web"
	run keel delete deploy web -n shop --cascade=foreground
	assert_success
	assert_output "deployment/web deleted"
}

@test "get -w -o json prints one JSON event per line" {
	write_app
	out=$BATS_TEST_TMPDIR/watch.json
	timeout 5 "$KEEL" get tasks -w -o json >"$out" 2>/dev/null &
	wpid=$!
	sleep 1.5
	keel apply -f "$M/20-task.yaml" >/dev/null
	wait $wpid || true
	# the (empty) list first, then the event
	run jq -c 'select(.type) | [.type, .object.metadata.name]' "$out"
	assert_output '["ADDED","hello"]'
}

@test "diff: 0 when in sync, 1 with a unified diff when not, 2 on errors" {
	write_app
	run keel diff -f "$M/20-task.yaml"
	assert_failure 1
	assert_line '--- live/tasks/default/hello'
	assert_line '+++ merged/tasks/default/hello'
	assert_line '+kind: Task'

	keel apply -f "$M" >/dev/null
	run keel diff -f "$M"
	assert_success
	assert_output ""

	sed -i 's/image: busybox/image: busybox:1.36/' "$M/20-task.yaml"
	run keel diff -f "$M"
	assert_failure 1
	assert_line '-  image: busybox'
	assert_line '+  image: busybox:1.36'
	refute_output --partial resourceVersion
	refute_output --partial managedFields
	# diff changed nothing
	run keel get task hello -o json
	assert_equal "$(echo "$output" | jq -r .spec.image)" busybox

	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: z}\nspec: {imag: x}\n' >"$BATS_TEST_TMPDIR/bad.yaml"
	run keel diff -f "$BATS_TEST_TMPDIR/bad.yaml"
	assert_failure 2
	assert_output --partial 'bad.yaml:4:'
}

@test "convert prints each document as one JSON line, as read" {
	printf 'b: 1\na: [x, "y"]\n---\n---\nkind: Task\non: off\n' >"$M/c.yaml"
	run --separate-stderr keel convert -f "$M/c.yaml"
	assert_success
	[[ "$stderr" == *"c.yaml:6:1: warning: "* ]] || fail "no warning: $stderr"
	assert_line --index 0 '{"b":1,"a":["x","y"]}'
	assert_line --index 1 '{"kind":"Task","on":"off"}'
	run bash -c "printf 'x: 0755\n' | '$KEEL' convert -f - 2>/dev/null"
	assert_output '{"x":755}'
}

@test "usage errors exit 2 with a hint" {
	run keel aply -f x
	assert_failure 2
	assert_line --index 0 'error: unknown command "aply"; did you mean "apply"?'
	run keel get taks
	assert_failure 2
	assert_output 'error: the server doesn'"'"'t have a resource type "taks"; did you mean "tasks"?'
	run keel get pods
	assert_failure 2
	assert_output --partial 'did you mean "tasks"? (a keel Task is one container, as a Pod is)'
	run keel get tasks --namespcae x
	assert_failure 2
	assert_output --partial 'did you mean "--namespace"?'
	run keel apply
	assert_failure 2
	# commands with subcommands: none, an unknown one, a flag of a subcommand
	run keel rollout
	assert_failure 2
	assert_output "error: keel rollout needs a command: status, history or undo
See 'keel rollout --help' for usage."
	run keel token revok alice
	assert_failure 2
	assert_output 'error: unknown token command "revok"; did you mean "revoke"?'
	run keel token list --bogus
	assert_failure 2
	assert_line --index 0 'error: unknown flag "--bogus" for "keel token list"'
	run keel rollout undo --help
	assert_success
	assert_output --partial 'keel rollout undo deployment NAME'
	run keel help apply
	assert_success
	assert_output --partial 'Examples:'
	for c in apply get describe delete diff convert version; do
		run keel "$c" --help
		assert_success
		assert_output --partial 'Flags:'
		assert_output --partial "keel $c"
	done
}

@test "a wrong token gets the server's 401; version reports the server" {
	run env KEEL_TOKEN=wrong "$KEEL" get tasks
	assert_failure 1
	assert_output --partial 'Error from server (Unauthorized)'
	run env KEEL_TOKEN=wrong "$KEEL" apply -f "$KEEL_SRC/examples/hello/task.yaml"
	assert_failure 1
	assert_output --partial 'Unauthorized'
	run keel version
	assert_success
	assert_line --index 0 --partial 'Client Version: '
	assert_line --index 1 --partial 'Server Version: '
	refute_output --partial unreachable
}

@test "server down: a clear 'cannot reach' error; version still exits 0" {
	keel_server_stop
	run keel get tasks
	assert_failure 1
	assert_output --partial "cannot reach keel server at $KEEL_URL"
	assert_output --partial 'is `keel server` running?'
	run keel apply -f "$KEEL_SRC/examples/hello/task.yaml"
	assert_failure 1
	assert_output --partial 'cannot reach keel server'
	run keel version
	assert_success
	assert_output --partial 'unreachable'
}

@test "the same object in two files (or twice in one) is an error naming both places; nothing is applied" {
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: dup}\nspec: {image: a}\n' >"$M/a.yaml"
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: dup}\nspec: {image: b}\n' >"$M/b.yml"
	run keel apply -f "$M" -R
	assert_failure 1
	assert_output --partial "$M/a.yaml:1:1: task/dup: defined twice (also at $M/b.yml:1:1)"
	assert_output --partial "$M/b.yml:1:1: task/dup: defined twice (also at $M/a.yaml:1:1)"
	assert_output --partial 'error: 2 errors in the manifests; nothing was applied'
	assert_output --partial 'nothing was applied'
	refute_output --partial created
	run --separate-stderr keel get tasks -A -o name
	assert_output ""
	run keel diff -f "$M"
	assert_failure 2
	assert_output --partial "$M/b.yml:1:1: task/dup: defined twice (also at $M/a.yaml:1:1)"
	run keel delete -f "$M"
	assert_failure 1
	assert_output --partial "defined twice"
	# twice in one file; another namespace is another object
	rm "$M/b.yml"
	printf -- '---\napiVersion: keel/v1\nkind: Task\nmetadata: {name: dup, namespace: other}\nspec: {image: b}\n' >>"$M/a.yaml"
	printf -- '---\napiVersion: keel/v1\nkind: Task\nmetadata: {name: dup, namespace: default}\nspec: {image: c}\n' >>"$M/a.yaml"
	run keel apply -f "$M/a.yaml"
	assert_failure 1
	assert_output --partial "$M/a.yaml:1:1: task/dup: defined twice (also at $M/a.yaml:11:1)"
	assert_output --partial "$M/a.yaml:11:1: task/dup: defined twice (also at $M/a.yaml:1:1)"
	refute_output --partial "a.yaml:6:1: task/dup"
}

@test "a document the server rejects fails the whole apply before anything is written" {
	write_app
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: lost, namespace: nope}\nspec: {image: a}\n' >"$M/40-lost.yaml"
	run keel apply -f "$M"
	assert_failure 1
	assert_output --partial "$M/40-lost.yaml:1:1: Error from server (NotFound): namespaces \"nope\" not found"
	assert_output --partial 'nothing was applied'
	refute_output --partial 'created'
	run --separate-stderr keel get tasks -A -o name
	assert_output ""
	run keel get ns shop
	assert_failure 1
	# without the bad one, the namespace created by the same apply still works
	rm "$M/40-lost.yaml"
	run keel apply -f "$M"
	assert_success
	assert_line "deployment/web created"
}

@test "a NUL character in a string is an error at its line" {
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: n}\nspec:\n  image: busybox\n  command: ["echo", "a\\0b"]\n' >"$M/nul.yaml"
	run keel apply -f "$M/nul.yaml"
	assert_failure 1
	assert_output --partial "$M/nul.yaml:6:"
	assert_output --partial 'spec.command[1]: a string must not contain a NUL character'
	assert_output --partial 'nothing was applied'
	run --separate-stderr keel get tasks -A -o name
	assert_output ""
}

@test "the error summary counts error lines, not documents" {
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: many}\nspec:\n  imag: a\n  restartPolicy: Sometimes\n  command: 3\n  bogus: 1\n' >"$M/many.yaml"
	run --separate-stderr keel apply -f "$M/many.yaml"
	assert_failure 1
	n=$(grep -c "^$M/many.yaml:[0-9]*:[0-9]*: " <<<"$stderr")
	[ "$n" -ge 4 ] || fail "expected at least 4 error lines: $stderr"
	[[ "$stderr" == *"error: $n errors in the manifests; nothing was applied"* ]] || fail "$stderr"
}

@test "help COMMAND prints that command's help, help help too" {
	run keel help help
	assert_success
	assert_output --partial 'keel help [COMMAND]'
	run keel help diff
	assert_success
	assert_output --partial 'keel diff'
	run keel help nosuch
	assert_failure 2
}

@test "diff of a new Namespace and objects in it shows them all as added" {
	printf 'apiVersion: keel/v1\nkind: Namespace\nmetadata: {name: brandnew}\n---\napiVersion: keel/v1\nkind: Task\nmetadata: {name: t, namespace: brandnew}\nspec: {image: busybox}\n' >"$M/x.yaml"
	run keel diff -f "$M/x.yaml"
	assert_failure 1
	assert_line '+++ merged/tasks/brandnew/t'
	assert_line '+  image: busybox'
	assert_output --partial 'namespace "brandnew" does not exist yet'
	refute_output --partial 'not found'
}

@test "every --help with duration flags says once that a bare number is seconds, and it is" {
	for c in "server" "agent"; do
		run "$KEEL" $c --help
		assert_success
		[ "$(grep -c 'a bare number is seconds' <<<"$output")" = 1 ]
	done
	for c in "up" "apply" "sync" "rollout status"; do
		run "$KEEL" $c --help
		assert_success
		[ "$(grep -c 'DURATION: a number with a unit, ms, s, m or h (500ms, 90s, 5m, 1.5h); a bare number is seconds' <<<"$output")" = 1 ]
	done
	# a command without one does not
	run "$KEEL" get --help
	refute_output --partial "bare number"
	# and the rule holds: --request-timeout 5 is 5 s, as --timeout 5 and --interval 5 are
	run "$KEEL" server --request-timeout 5 --listen 127.0.0.1:notaport
	refute_output --partial "invalid duration"
	run "$KEEL" server --request-timeout 5x
	assert_failure 2
	assert_output --partial 'invalid duration "5x"'
}
