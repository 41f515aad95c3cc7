#!/usr/bin/env bats
# keel apply --prune and keel diff --prune: apply sets (the label
# keel/apply-set), pruning what left the manifests in reverse dependency
# order, and never touching objects of other sets or of no set.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	keel_server_start --controllers=none
	M=$BATS_TEST_TMPDIR/m
	mkdir -p "$M"
}
teardown() { keel_server_stop; }

task_yaml() { # task_yaml NAME [NAMESPACE]
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  image: busybox\n' \
		"$1" "${2:-default}"
}
exists() { keel get "$1" "$2" ${3:+-n "$3"} -o name >/dev/null 2>&1; }
revision() { keel get tasks -A -o json | jq -r .metadata.resourceVersion; }
set_of() { keel get "$1" "$2" ${3:+-n "$3"} -o json | jq -r '.metadata.labels["keel/apply-set"] // "none"'; }

write_set() {
	printf 'apiVersion: keel/v1\nkind: Namespace\nmetadata: {name: shop}\n' >"$M/00-ns.yaml"
	cat >"$M/10-web.yaml" <<'EOF'
apiVersion: keel/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  template:
    metadata:
      labels: {app: web}
    spec:
      image: busybox
EOF
	task_yaml a shop >"$M/20-a.yaml"
	task_yaml b >"$M/30-b.yaml"
}

@test "apply --prune labels the set; objects that left the manifests are pruned, others never" {
	write_set
	task_yaml other | keel apply -f - --set other >/dev/null
	task_yaml manual >"$BATS_TEST_TMPDIR/manual.yaml"
	keel apply -f "$BATS_TEST_TMPDIR/manual.yaml" >/dev/null
	run keel apply -f "$M" --prune --set s1
	assert_success
	assert_line "namespace/shop created"
	assert_line "task/b created"
	refute_output --partial pruned
	assert_equal "$(set_of task a shop)" s1
	assert_equal "$(set_of namespace shop)" s1
	assert_equal "$(set_of task other)" other
	assert_equal "$(set_of task manual)" none

	# re-applying the same set writes nothing
	rev=$(revision)
	run keel apply -f "$M" --prune --set s1
	assert_success
	refute_output --partial created
	refute_output --partial configured
	refute_output --partial pruned
	assert_equal "$(revision)" "$rev"

	rm "$M/20-a.yaml" "$M/30-b.yaml"
	run keel apply -f "$M" --prune --set s1
	assert_success
	assert_line "task/a pruned"
	assert_line "task/b pruned"
	! exists task a shop
	! exists task b
	exists deployment web shop
	exists task other
	exists task manual
}

@test "--prune --dry-run and diff --prune show what would go and delete nothing" {
	write_set
	keel apply -f "$M" --prune --set s1 >/dev/null
	run keel diff -f "$M" --prune --set s1
	assert_success
	assert_output ""
	rm "$M/30-b.yaml"
	run keel diff -f "$M" --prune --set s1
	assert_failure 1
	assert_line '--- live/tasks/default/b'
	assert_line '+++ merged/tasks/default/b'
	assert_line '-kind: Task'
	assert_line '-    keel/apply-set: s1'
	rev=$(revision)
	run keel apply -f "$M" --prune --set s1 --dry-run
	assert_success
	assert_line "task/b pruned (dry run)"
	assert_line "deployment/web unchanged (dry run)"
	assert_equal "$(revision)" "$rev"
	exists task b
}

@test "pruning goes in reverse order: Deployments and Tasks before their Namespace" {
	write_set
	keel apply -f "$M" --prune --set s1 >/dev/null
	rm "$M"/*.yaml
	task_yaml b >"$M/30-b.yaml"
	run keel apply -f "$M" --prune --set s1
	assert_success
	assert_line --index 0 "task/b unchanged"
	assert_line --index 1 "deployment/web pruned"
	assert_line --index 2 "task/a pruned"
	assert_line --index 3 "namespace/shop pruned"
	! exists namespace shop
}

@test "a Namespace that still holds objects of no set or another set is not pruned" {
	write_set
	keel apply -f "$M" --prune --set s1 >/dev/null
	task_yaml hand shop | keel apply -f - >/dev/null
	rm "$M/00-ns.yaml" "$M/10-web.yaml" "$M/20-a.yaml"
	run keel apply -f "$M" --prune --set s1
	assert_success
	assert_line "deployment/web pruned"
	assert_line "task/a pruned"
	assert_line --partial "warning: namespace/shop not pruned: it still holds task/hand, which is not in the apply set"
	exists namespace shop
	exists task hand shop
}

@test "no objects: no prune without --allow-empty" {
	write_set
	keel apply -f "$M" --prune --set s1 >/dev/null
	rm "$M"/*.yaml
	run keel apply -f "$M" --prune --set s1
	assert_failure 1
	assert_output --partial 'error: no objects passed to apply; with --prune that would delete every object of apply set "s1" (give --allow-empty if that is what you want)'
	exists task b
	run keel apply -f "$M" --prune --set s1 --allow-empty
	assert_success
	assert_line "namespace/shop pruned"
	! exists task b
}

@test "the default set is named after the path; flags are checked" {
	write_set
	run keel apply -f "$M" --prune
	assert_success
	set=$(set_of task b)
	[[ "$set" =~ ^m-[0-9a-f]{8}$ ]] || fail "default set name: $set"
	# the same directory by another path is the same set
	run keel apply -f "$M/../m/" --prune
	assert_success
	refute_output --partial pruned
	refute_output --partial configured

	run keel apply -f "$M" -f "$M" --prune
	assert_failure 2
	assert_output --partial 'with more than one -f, name the apply set with --set NAME'
	run bash -c "cat '$M/30-b.yaml' | '$KEEL' apply -f - --prune"
	assert_failure 2
	run keel apply -f "$M" --prune --set 'not/valid'
	assert_failure 2
	assert_output --partial 'invalid apply set name "not/valid"'
	run keel apply -f "$M" --allow-empty
	assert_failure 2
}

@test "a manifest carrying another set's label is an error at its line; a rejected apply does not prune" {
	write_set
	keel apply -f "$M" --prune --set s1 >/dev/null
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: c\n  labels:\n    keel/apply-set: s2\nspec:\n  image: x\n' >"$M/40-c.yaml"
	run keel apply -f "$M" --prune --set s1
	assert_failure 1
	assert_line --partial "40-c.yaml:6:5: metadata.labels[keel/apply-set]: the object is in apply set \"s2\" here"
	rm "$M/40-c.yaml"

	# the server refuses one object (its namespace does not exist): nothing
	# is applied, nothing pruned
	task_yaml c nowhere >"$M/40-c.yaml"
	rm "$M/20-a.yaml"
	run keel apply -f "$M" --prune --set s1
	assert_failure 1
	assert_output --partial 'namespaces "nowhere" not found'
	assert_output --partial 'nothing was applied'
	refute_output --partial pruned
	exists task a shop
}

@test "apply without --prune never deletes; --set alone joins a set" {
	write_set
	keel apply -f "$M" --set s1 >/dev/null
	assert_equal "$(set_of task b)" s1
	rm "$M/30-b.yaml"
	run keel apply -f "$M" --set s1
	assert_success
	refute_output --partial pruned
	exists task b
}
