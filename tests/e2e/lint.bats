#!/usr/bin/env bats
# keel lint end to end: offline validation, no server anywhere (KEEL_SERVER
# points at a port nothing listens on, so any request would fail loudly).

bats_require_minimum_version 1.5.0
load helpers

setup() {
	export KEEL_SERVER=http://127.0.0.1:1 KEEL_CONFIG=/nonexistent/config
	D=$BATS_TEST_TMPDIR/m
	mkdir -p "$D"
}

@test "every file in examples/ passes, one by one and each example as a tree" {
	# Each example is one apply set; examples/web-v2 is a new version of
	# examples/web's Deployment, so examples/ as a whole is not one.
	for ex in "$KEEL_SRC"/examples/*/; do
		run keel lint -f "$ex"
		assert_success
		assert_output --regexp '^[0-9]+ files?, [0-9]+ documents?: 0 errors, 0 warnings$'
	done
	n=0
	while IFS= read -r f; do
		run keel lint -f "$f"
		assert_success
		assert_output --partial ': 0 errors, 0 warnings'
		n=$((n + 1))
	done < <(find "$KEEL_SRC/examples" -name '*.yaml' -o -name '*.yml' | sort)
	[ "$n" -ge 7 ] || fail "only $n example files"
}

@test "broken files: each problem at FILE:LINE:COL with its field, exit 1" {
	cat >"$D/task.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata:
  name: web
spec:
  image: busybox
  replica: 3
  resources:
    requests:
      memory: 12x
EOF
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: a\n  name: b\n' >"$D/dupkey.yaml"
	printf 'apiVersion: keel/v1\nkind: Tsak\nmetadata: {name: k}\n' >"$D/kind.yaml"
	printf -- '- just\n- a list\n' >"$D/list.yaml"
	mkdir -p "$D/sub"
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: web\nspec:\n  image: x\n' >"$D/sub/again.yaml"
	run keel lint -f "$D"
	assert_failure 1
	assert_line --partial "$D/task.yaml:7:3: spec.replica: unknown field"
	assert_line --partial "$D/task.yaml:10:7: spec.resources.requests.memory: invalid quantity \"12x\""
	assert_line --partial "$D/dupkey.yaml:5:3: duplicate key \"name\""
	assert_line "$D/kind.yaml:2:1: kind: unknown kind \"Tsak\", did you mean \"Task\"?"
	assert_line --partial "$D/list.yaml:1:1: a manifest must be a mapping"
	# files in name order, directories in place: sub/ comes before task.yaml
	assert_line "$D/task.yaml:1:1: task/web: defined twice (also at $D/sub/again.yaml:1:1)"
	assert_line "$D/sub/again.yaml:1:1: task/web: defined twice (also at $D/task.yaml:1:1)"
	assert_line '5 files, 4 documents: 7 errors, 0 warnings'
}

@test "YAML 1.1 look-alikes are warnings (exit 0); where the API wants a boolean, an error" {
	cat >"$D/node.yaml" <<'EOF'
apiVersion: keel/v1
kind: Task
metadata:
  name: t
  labels:
    enabled: yes
spec:
  image: busybox
EOF
	run keel lint -f "$D/node.yaml"
	assert_success
	assert_line --partial "$D/node.yaml:6:14: warning: \"yes\" is a string in YAML 1.2 but a boolean in YAML 1.1"
	assert_line '1 file, 1 document: 0 errors, 1 warning'
	printf 'apiVersion: keel/v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  unschedulable: on\n' >"$D/n.yaml"
	run keel lint -f "$D/n.yaml"
	assert_failure 1
	assert_line --partial "$D/n.yaml:5:18: warning: \"on\" is a string"
	assert_line --partial "$D/n.yaml:5:3: spec.unschedulable: must be a boolean"
}

@test "-o json is a list of {file,line,column,field,severity,message} that jq reads" {
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  imag: x\n  restartPolicy: no\n' >"$D/t.yaml"
	run --separate-stderr keel lint -f "$D" -o json
	assert_failure 1
	echo "$output" | jq -e 'type == "array" and length == 4' >/dev/null
	run jq -c '.[] | [.file, .line, .column, .field, .severity]' <<<"$output"
	assert_line "[\"$D/t.yaml\",6,18,null,\"warning\"]"
	assert_line "[\"$D/t.yaml\",5,3,\"spec.imag\",\"error\"]"
	assert_line "[\"$D/t.yaml\",6,3,\"spec.restartPolicy\",\"error\"]"
	run keel lint -f "$KEEL_SRC/examples/gitops" -o json
	assert_success
	assert_output '[]'
}

@test "stdin, a missing path, and usage errors" {
	run bash -c "printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: t}\nspec: {image: x}\n' | '$KEEL' lint -f -"
	assert_success
	run keel lint -f "$D/nope.yaml"
	assert_failure 1
	assert_line "error: the path \"$D/nope.yaml\" does not exist"
	run keel lint
	assert_failure 2
	run keel lint -f "$D" -o yaml
	assert_failure 2
	run keel lint -f "$D"
	assert_success
	assert_line "warning: $D: no *.yaml, *.yml or *.json files"
}

@test "a Deployment template with restartPolicy Never or a nodeName is an error at its line" {
	cat >"$D/deploy.yaml" <<'EOF2'
apiVersion: keel/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      image: busybox
      restartPolicy: Never
      nodeName: n1
EOF2
	run keel lint -f "$D/deploy.yaml"
	assert_failure 1
	assert_line --partial "$D/deploy.yaml:9:7: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
	assert_line --partial "$D/deploy.yaml:10:7: spec.template.spec.nodeName: Forbidden: may not be set in a Deployment's template"
}

@test "a FIFO, a link to a device and an oversized file in a tree are errors at their path, read by no one" {
	printf 'apiVersion: keel/v1\nkind: Namespace\nmetadata: {name: ok}\n' >"$D/a.yaml"
	mkfifo "$D/pipe.yaml"
	ln -s /dev/zero "$D/zero.yaml"
	head -c $((3 * 1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$D/big.yaml"
	run timeout 10 "$KEEL" lint -f "$D"
	assert_failure 1
	assert_line "error: $D/pipe.yaml: not a regular file (a FIFO); not read"
	assert_line "error: $D/zero.yaml: not a regular file (a character device); not read"
	assert_line "error: $D/big.yaml: larger than the 3 MiB limit of a manifest file (3145729 bytes); not read"
	assert_line '4 files, 1 document: 3 errors, 0 warnings'
	# named on the command line, a pipe is read as stdin is: -f <(cmd)
	run timeout 10 bash -c "'$KEEL' lint -f <(cat '$D/a.yaml')"
	assert_success
	assert_output --partial '1 file, 1 document: 0 errors'
}

@test "a dangling *.yaml symlink in a tree is a warning at its path (exit 0)" {
	printf 'apiVersion: keel/v1\nkind: Namespace\nmetadata: {name: ok}\n' >"$D/a.yaml"
	ln -s "$D/gone.yaml" "$D/b.yaml"
	run keel lint -f "$D"
	assert_success
	assert_line "warning: $D/b.yaml: skipped: dangling symlink to $D/gone.yaml"
	assert_line '2 files, 1 document: 0 errors, 1 warning'
}
