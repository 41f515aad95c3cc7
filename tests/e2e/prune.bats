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
	assert_line --partial "warning: namespace/shop not pruned: it still holds task/hand, which is in no apply set"
	exists namespace shop
	exists task hand shop
}

@test "a Namespace left out while the set still defines objects in it is kept, and the warning says so" {
	write_set
	keel apply -f "$M" --prune --set s1 >/dev/null
	rm "$M/00-ns.yaml"
	run keel apply -f "$M" --prune --set s1
	assert_success
	assert_line --regexp '^warning: namespace/shop not pruned: it still holds (deployment/web|task/a), which the manifests still define \(in this apply set, "s1"\); it keeps the namespace$'
	refute_output --partial 'which is not in the apply set'
	exists namespace shop
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

# The tester's repro: two directories, each its own apply set (the default
# name, from the path), both defining task/shared.
shared_yaml() {
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: shared}\nspec: {image: x, restartPolicy: Always}\n'
}
rv_of() { keel get "$1" "$2" ${3:+-n "$3"} -o json | jq -r .metadata.resourceVersion; }
uid_of() { keel get "$1" "$2" ${3:+-n "$3"} -o json | jq -r .metadata.uid; }

@test "an object of another apply set is not taken over: error naming both sets, nothing written, no prune" {
	A=$BATS_TEST_TMPDIR/a B=$BATS_TEST_TMPDIR/b
	mkdir -p "$A" "$B"
	shared_yaml >"$A/shared.yaml"
	run keel apply -R -f "$A" --prune
	assert_success
	assert_line "task/shared created"
	sa=$(set_of task shared)
	[[ "$sa" =~ ^a-[0-9a-f]{8}$ ]] || fail "set a: $sa"
	# b's set first holds task/old, which its manifests then drop
	task_yaml old >"$B/old.yaml"
	keel apply -R -f "$B" --prune >/dev/null
	sb=$(set_of task old)
	[[ "$sb" =~ ^b-[0-9a-f]{8}$ ]] || fail "set b: $sb"
	rm "$B/old.yaml"
	cp "$A/shared.yaml" "$B/"
	task_yaml fresh >"$B/fresh.yaml"
	rv=$(rv_of task shared)
	uid=$(uid_of task shared)
	msg="task/shared belongs to apply set \"$sa\", not \"$sb\": delete it from \"$sa\" first, or give --overwrite-set to move it to \"$sb\""

	run keel apply -R -f "$B" --prune
	assert_failure 1
	assert_line "$B/shared.yaml:1:1: error: $msg"
	assert_line "error: 1 object belongs to another apply set; nothing was applied"
	refute_output --partial pruned
	assert_equal "$(set_of task shared)" "$sa"
	assert_equal "$(rv_of task shared)" "$rv"
	exists task old
	! exists task fresh

	# --dry-run and diff --prune say the same, and write nothing
	run keel apply -R -f "$B" --prune --dry-run
	assert_failure 1
	assert_line "$B/shared.yaml:1:1: error: $msg"
	assert_line "error: 1 object failed to apply; apply set \"$sb\" was not pruned"
	refute_output --partial 'pruned (dry run)'
	run keel diff -R -f "$B" --prune
	assert_failure 2
	assert_line "$B/shared.yaml:1:1: error: $msg"
	refute_output --partial 'live/tasks/default/old'
	assert_output --partial "not showing what apply --prune would prune"
	assert_equal "$(rv_of task shared)" "$rv"
	exists task old

	# the repro's last step: b no longer defines it, and b's prune cannot
	# take a's object with it
	rm "$B/shared.yaml" "$B/fresh.yaml"
	touch "$B/empty.yaml"
	run keel apply -R -f "$B" --prune --allow-empty
	assert_success
	assert_line "task/old pruned"
	refute_line "task/shared pruned"
	assert_equal "$(set_of task shared)" "$sa"
	assert_equal "$(rv_of task shared)" "$rv"
}

@test "--overwrite-set moves an object to this set (same uid); then the other set reports the conflict" {
	A=$BATS_TEST_TMPDIR/a B=$BATS_TEST_TMPDIR/b
	mkdir -p "$A" "$B"
	shared_yaml >"$A/shared.yaml"
	cp "$A/shared.yaml" "$B/"
	keel apply -R -f "$A" --prune --set sa >/dev/null
	uid=$(uid_of task shared)
	run keel apply -R -f "$B" --prune --set sb --overwrite-set --dry-run
	assert_success
	assert_line 'task/shared configured (dry run) (moved from apply set "sa")'
	assert_equal "$(set_of task shared)" sa
	run keel diff -R -f "$B" --set sb --overwrite-set
	assert_failure 1
	assert_line '-    keel/apply-set: sa'
	assert_line '+    keel/apply-set: sb'
	run keel apply -R -f "$B" --prune --set sb --overwrite-set
	assert_success
	assert_line 'task/shared configured (moved from apply set "sa")'
	assert_equal "$(set_of task shared)" sb
	assert_equal "$(uid_of task shared)" "$uid"
	# once moved, it is just b's: no flag needed, nothing written
	rv=$(rv_of task shared)
	run keel apply -R -f "$B" --prune --set sb
	assert_success
	assert_line 'task/shared unchanged'
	# and a, which still defines it, is now the one refused
	run keel apply -R -f "$A" --prune --set sa
	assert_failure 1
	assert_output --partial 'error: task/shared belongs to apply set "sb", not "sa"'
	assert_equal "$(set_of task shared)" sb
	assert_equal "$(rv_of task shared)" "$rv"

	# --set alone (no --prune) is checked the same way
	run keel apply -f "$A" --set sa
	assert_failure 1
	assert_output --partial 'belongs to apply set "sb"'
	run keel apply -f "$A" --overwrite-set
	assert_failure 2
	assert_output --partial 'error: --overwrite-set only makes sense with --prune or --set'
}

@test "an object without a set label is adopted by the set that applies it, then pruned with it" {
	task_yaml manual >"$M/manual.yaml"
	keel apply -f "$M/manual.yaml" >/dev/null
	uid=$(uid_of task manual)
	run keel apply -f "$M" --prune --set s1
	assert_success
	assert_line "task/manual configured"
	assert_equal "$(set_of task manual)" s1
	assert_equal "$(uid_of task manual)" "$uid"
	rm "$M/manual.yaml"
	task_yaml b >"$M/30-b.yaml"
	run keel apply -f "$M" --prune --set s1
	assert_success
	assert_line "task/manual pruned"
}
