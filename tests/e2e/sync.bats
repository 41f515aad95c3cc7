#!/usr/bin/env bats
# keel sync end to end: a real server (--controllers=none), a manifest tree
# in the test's temp directory, and `keel sync` running in the background;
# files are added, edited, rename-saved, broken, removed and checked out
# with git, and objects are changed by hand, and the cluster must follow.
# Passes are counted by the "sync pass N" lines of the sync's log, so a
# negative assertion ("nothing was deleted") is made after the pass that
# saw the change, never after a fixed sleep.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	keel_server_start --controllers=none
	export -f keel
	R=$BATS_TEST_TMPDIR/repo
	mkdir -p "$R"
	SYNC_LOG=$BATS_TEST_TMPDIR/sync.log
	SYNC_PID=""
	SYNC2_PID=""
}

teardown() {
	[ -z "$SYNC2_PID" ] || { kill -TERM "$SYNC2_PID"; wait "$SYNC2_PID"; } || true
	sync_stop || true
	keel_server_stop
}

# wait_for TRIES CMD...: runs CMD every 0.1 s until it succeeds.
wait_for() {
	local n=$1 i
	shift
	for i in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	cat "$SYNC_LOG" >&2 || true
	return 1
}

passes() { grep -c 'sync pass ' "$SYNC_LOG" 2>/dev/null || true; }
# wait_passes N: until the log holds N pass lines (a pass logs its line last).
wait_passes() { wait_for 300 bash -c "[ \"\$(grep -c 'sync pass ' '$SYNC_LOG')\" -ge $1 ]"; }
last_pass() { grep 'sync pass ' "$SYNC_LOG" | tail -1; }

# sync_start [FLAGS...]: keel sync $R in the background; waits for its
# first pass (the log may hold an earlier sync's lines).
sync_start() {
	local n
	n=$(passes)
	"$KEEL" sync "$R" --set t "$@" >>"$SYNC_LOG" 2>&1 &
	SYNC_PID=$!
	wait_passes $((n + 1))
}

# sync_stop: SIGTERM, then the exit status must be 0.
sync_stop() {
	[ -n "$SYNC_PID" ] || return 0
	local pid=$SYNC_PID rc=0
	SYNC_PID=""
	kill -TERM "$pid" 2>/dev/null || return 0
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || { echo "keel sync exited $rc" >&2; cat "$SYNC_LOG" >&2; return 1; }
}

task_yaml() { # task_yaml NAME [IMAGE] [NAMESPACE]
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  image: %s\n' \
		"$1" "${3:-default}" "${2:-busybox}"
}
ns_yaml() { printf 'apiVersion: keel/v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$1"; }

uid_of() { keel get "$1" "$2" ${3:+-n "$3"} -o json | jq -r .metadata.uid; }
image_of() { keel get task "$1" ${2:+-n "$2"} -o json | jq -r .spec.image; }
exists() { keel get "$1" "$2" ${3:+-n "$3"} -o name >/dev/null 2>&1; }
gone() { ! exists "$@"; }
revision() { keel get tasks -A -o json | jq -r .metadata.resourceVersion; }

@test "add a file: created; edit: configured, same uid; rename-save: configured, same uid" {
	mkdir -p "$R/apps"
	task_yaml keep >"$R/apps/keep.yaml"
	sync_start
	assert exists task keep
	run last_pass
	assert_output --partial 'sync pass 1 (start): 1 file, 1 object: 1 created, 0 configured, 0 unchanged, 0 pruned, 0 errors'
	keep_uid=$(uid_of task keep)

	task_yaml web busybox:1 >"$R/apps/web.yaml"
	wait_for 100 exists task web
	wait_passes 2
	assert_equal "$(image_of web)" busybox:1
	grep -q 'task/default/web created' "$SYNC_LOG"
	uid=$(uid_of task web)

	n=$(passes)
	task_yaml web busybox:2 >"$R/apps/web.yaml"
	wait_passes $((n + 1))
	assert_equal "$(image_of web)" busybox:2
	assert_equal "$(uid_of task web)" "$uid"
	grep -q 'task/default/web configured' "$SYNC_LOG"

	# vim: move the original to a backup, write the new file, remove the
	# backup; other editors write a temp file and rename it over
	n=$(passes)
	mv "$R/apps/web.yaml" "$R/apps/web.yaml~"
	task_yaml web busybox:3 >"$R/apps/web.yaml"
	rm "$R/apps/web.yaml~"
	wait_passes $((n + 1))
	assert_equal "$(image_of web)" busybox:3
	n=$(passes)
	task_yaml web busybox:4 >"$R/apps/.web.yaml.tmp"
	mv "$R/apps/.web.yaml.tmp" "$R/apps/web.yaml"
	wait_passes $((n + 1))
	assert_equal "$(image_of web)" busybox:4
	assert_equal "$(uid_of task web)" "$uid"
	assert_equal "$(uid_of task keep)" "$keep_uid"
	run grep -c ' pruned$' "$SYNC_LOG"
	assert_output 0
	# every object carries the set's label
	assert_equal "$(keel get task web -o json | jq -r '.metadata.labels["keel/apply-set"]')" t
}

@test "remove a file: its objects are pruned; other files', other sets' and unlabelled objects are not" {
	task_yaml a >"$R/a.yaml"
	{ task_yaml b; echo ---; task_yaml b2; } >"$R/b.yaml"
	task_yaml other | keel apply -f - --set other >/dev/null
	task_yaml manual | keel apply -f - >/dev/null
	sync_start
	a_uid=$(uid_of task a)
	n=$(passes)
	rm "$R/b.yaml"
	wait_passes $((n + 1))
	assert gone task b
	assert gone task b2
	assert_equal "$(uid_of task a)" "$a_uid"
	assert exists task other
	assert exists task manual
	run last_pass
	assert_output --partial '1 file, 1 object: 0 created, 0 configured, 1 unchanged, 2 pruned, 0 errors'
	grep -q 'task/default/b pruned' "$SYNC_LOG"
}

@test "a new subdirectory with a file is applied; Namespaces first, pruned last" {
	task_yaml a >"$R/a.yaml"
	sync_start
	mkdir -p "$R/team/x"
	{ task_yaml t busybox team; } >"$R/team/x/t.yaml"
	ns_yaml team >"$R/team/ns.yaml"
	wait_for 100 exists task t team
	exists namespace team
	n=$(passes)
	rm -r "$R/team"
	wait_passes $((n + 1))
	assert gone task t team
	# the Task went before its Namespace
	run grep -n -e 'task/team/t pruned' -e 'namespace/team pruned' "$SYNC_LOG"
	assert_line --index 0 --partial 'task/team/t pruned'
	assert_line --index 1 --partial 'namespace/team pruned'
}

@test "a broken file is reported with file:line:col and its objects are left; fixed, it is applied" {
	task_yaml a >"$R/a.yaml"
	task_yaml b busybox:1 >"$R/b.yaml"
	sync_start
	b_uid=$(uid_of task b)
	n=$(passes)
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: b\nspec:\n  imag: busybox:2\n' >"$R/b.yaml"
	wait_passes $((n + 1))
	grep -q "b.yaml:6:3: spec.imag: unknown field, did you mean spec.image?" "$SYNC_LOG"
	run last_pass
	assert_output --partial '2 errors; 1 broken file left as it was'
	assert_equal "$(uid_of task b)" "$b_uid"
	assert_equal "$(image_of b)" busybox:1

	# a YAML syntax error, and a file removed meanwhile: that one is pruned
	n=$(passes)
	printf 'kind: [\n' >"$R/b.yaml"
	rm "$R/a.yaml"
	wait_passes $((n + 1))
	grep -q "b.yaml:2:1: did not find expected node content" "$SYNC_LOG"
	wait_for 50 gone task a
	assert_equal "$(uid_of task b)" "$b_uid"

	n=$(passes)
	task_yaml b busybox:3 >"$R/b.yaml"
	wait_passes $((n + 1))
	assert_equal "$(image_of b)" busybox:3
	assert_equal "$(uid_of task b)" "$b_uid"
	run last_pass
	assert_output --partial '0 errors'
}

@test "started with a broken file, the sync does not prune, and says why" {
	task_yaml a >"$R/a.yaml"
	task_yaml b >"$R/b.yaml"
	keel apply -f "$R" --prune --set t >/dev/null
	task_yaml old | keel apply -f - --set t >/dev/null
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: b}\nspec: {imag: x}\n' >"$R/b.yaml"
	sync_start
	run last_pass
	assert_output --partial "prune skipped: $R/b.yaml has errors and no good version of it has been seen"
	assert exists task b
	assert exists task old
	# fixed: now the prune runs (old goes, b stays)
	n=$(passes)
	task_yaml b >"$R/b.yaml"
	wait_passes $((n + 1))
	assert gone task old
	assert exists task b
}

@test "changed by hand: deleted, edited or scaled objects are put back within one interval; no-op passes write nothing" {
	task_yaml a >"$R/a.yaml"
	cat >"$R/web.yaml" <<'EOF'
apiVersion: keel/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      image: busybox
EOF
	sync_start --interval 2s
	a_uid=$(uid_of task a)
	keel delete task a >/dev/null
	keel scale deployment web --replicas 5 >/dev/null
	api PATCH /apis/keel/v1/namespaces/default/deployments/web \
		-H 'Content-Type: application/merge-patch+json' \
		-d '{"spec":{"template":{"spec":{"image":"evil"}}}}' >/dev/null
	wait_for 100 exists task a
	[ "$(uid_of task a)" != "$a_uid" ]
	wait_for 100 bash -c "[ \"\$(keel get deploy web -o json | jq .spec.replicas)\" = 2 ]"
	wait_for 50 bash -c "[ \"\$(keel get deploy web -o json | jq -r .spec.template.spec.image)\" = busybox ]"
	grep -q 'sync pass [0-9]* (interval)' "$SYNC_LOG"

	# once healed, interval passes change nothing: same revision, all unchanged
	n=$(passes)
	wait_passes $((n + 1))
	rev=$(revision)
	rvs=$(keel get deploy web -o json | jq -r .metadata.resourceVersion)
	n=$(passes)
	wait_passes $((n + 2))
	assert_equal "$(revision)" "$rev"
	assert_equal "$(keel get deploy web -o json | jq -r .metadata.resourceVersion)" "$rvs"
	run last_pass
	assert_output --partial '(interval): 2 files, 2 objects: 0 created, 0 configured, 2 unchanged, 0 pruned, 0 errors'
}

@test "git checkout between two commits converges to the second commit's objects" {
	git_() { git -C "$R" -c user.name=keel -c user.email=keel@example.invalid "$@"; }
	git_ init -q -b main
	mkdir -p "$R/apps"
	ns_yaml shop >"$R/shop.yaml"
	task_yaml a busybox:1 shop >"$R/apps/a.yaml"
	task_yaml b busybox:1 shop >"$R/apps/b.yaml"
	git_ add -A && git_ commit -q -m one
	one=$(git_ rev-parse HEAD)
	task_yaml a busybox:2 shop >"$R/apps/a.yaml"
	git_ rm -q apps/b.yaml
	mkdir -p "$R/more"
	task_yaml c busybox:1 shop >"$R/more/c.yaml"
	git_ add -A && git_ commit -q -m two
	git_ checkout -q "$one"

	sync_start
	assert exists task b shop
	a_uid=$(uid_of task a shop)
	n=$(passes)
	git_ checkout -q main
	wait_for 100 exists task c shop
	wait_for 100 gone task b shop
	wait_for 50 bash -c "[ \"\$(keel get task a -n shop -o json | jq -r .spec.image)\" = busybox:2 ]"
	assert_equal "$(uid_of task a shop)" "$a_uid"
	run bash -c "grep 'sync pass' '$SYNC_LOG' | grep -v ' 0 errors'"
	assert_output ""
	# and back
	git_ checkout -q "$one"
	wait_for 100 exists task b shop
	wait_for 100 gone task c shop
	assert_equal "$(uid_of task a shop)" "$a_uid"
}

@test "an empty directory does not prune without --allow-empty" {
	task_yaml a >"$R/a.yaml"
	keel apply -f "$R" --prune --set t >/dev/null
	rm "$R/a.yaml"
	run keel sync "$R" --set t --once
	assert_failure 1
	assert_output --partial 'holds no objects; not pruning apply set "t"'
	assert_output --partial 'prune skipped: no objects'
	assert exists task a
	run keel sync "$R" --set t --once --allow-empty
	assert_success
	assert_output --partial 'task/default/a pruned'
	assert gone task a
}

@test "--once applies examples/gitops, exit 0; a second run changes nothing; errors exit 1" {
	run keel sync "$KEEL_SRC/examples/gitops" --once
	assert_success
	assert_output --partial 'namespace/shop created'
	assert_output --partial 'deployment/shop/storefront created'
	assert_output --partial 'task/reports/report created'
	assert_output --partial '4 files, 4 objects: 4 created, 0 configured, 0 unchanged, 0 pruned, 0 errors'
	# the default set name: the directory's name and a hash of its path
	set=$(keel get deploy storefront -n shop -o json | jq -r '.metadata.labels["keel/apply-set"]')
	[[ "$set" =~ ^gitops-[0-9a-f]{8}$ ]] || fail "set name: $set"
	rev=$(revision)
	run keel sync "$KEEL_SRC/examples/gitops" --once
	assert_success
	assert_output --partial '4 unchanged, 0 pruned, 0 errors'
	assert_equal "$(revision)" "$rev"

	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: x}\nspec:\n  imag: z\n' >"$R/x.yaml"
	run keel sync "$R" --once
	assert_failure 1
	assert_output --partial 'x.yaml:5:3: spec.imag: unknown field'
}

@test "SIGINT and SIGTERM stop it cleanly; usage errors exit 2" {
	task_yaml a >"$R/a.yaml"
	sync_start
	kill -INT "$SYNC_PID"
	rc=0
	wait "$SYNC_PID" || rc=$?
	SYNC_PID=""
	assert_equal "$rc" 0
	grep -q 'sync of .* stopped' "$SYNC_LOG"
	sync_start
	sync_stop

	run keel sync
	assert_failure 2
	run keel sync "$R" --interval forever
	assert_failure 2
	assert_output --partial 'invalid duration "forever"'
	run keel sync "$R" --set 'Bad Name'
	assert_failure 2
	run keel sync "$BATS_TEST_TMPDIR/nope" --once
	assert_failure 1
	assert_output --partial "the path \"$BATS_TEST_TMPDIR/nope\" does not exist"
	# with --set, the pass itself reports it and does not prune
	run keel sync "$BATS_TEST_TMPDIR/nope" --once --set t
	assert_failure 1
	assert_output --partial "prune skipped: $BATS_TEST_TMPDIR/nope could not be read"
}

@test "two syncs over overlapping trees: the second reports the conflict once, neither rewrites the object" {
	A=$BATS_TEST_TMPDIR/a B=$BATS_TEST_TMPDIR/b LOG_B=$BATS_TEST_TMPDIR/sync-b.log
	mkdir -p "$A" "$B"
	task_yaml shared >"$A/shared.yaml"
	cp "$A/shared.yaml" "$B/"
	task_yaml bonly >"$B/bonly.yaml"
	task_yaml gone | keel apply -f - --set sb >/dev/null
	"$KEEL" sync "$A" --set sa --interval 500ms >>"$SYNC_LOG" 2>&1 &
	SYNC_PID=$!
	wait_passes 1
	assert exists task shared
	assert_equal "$(keel get task shared -o json | jq -r '.metadata.labels["keel/apply-set"]')" sa
	rv=$(keel get task shared -o json | jq -r .metadata.resourceVersion)

	"$KEEL" sync "$B" --set sb --interval 500ms >>"$LOG_B" 2>&1 &
	SYNC2_PID=$!
	wait_for 300 bash -c "[ \"\$(grep -c 'sync pass ' '$LOG_B')\" -ge 4 ]"
	n=$(passes)
	wait_passes $((n + 2))
	msg="$B/shared.yaml:1:1: task/shared belongs to apply set \"sa\", not \"sb\": delete it from \"sa\" first, or give --overwrite-set to move it to \"sb\""
	run grep -c -F "$msg" "$LOG_B"
	assert_output 1
	run bash -c "grep 'sync pass ' '$LOG_B' | tail -1"
	assert_output --partial '2 files, 2 objects: 0 created, 0 configured, 1 unchanged, 0 pruned, 1 error'
	assert_output --partial 'prune skipped: 1 object failed to apply'
	# b applied its other object, pruned nothing, and neither sync wrote
	# task/shared since a created it
	wait_for 50 exists task bonly
	assert exists task gone
	assert_equal "$(keel get task shared -o json | jq -r '.metadata.labels["keel/apply-set"]')" sa
	assert_equal "$(keel get task shared -o json | jq -r .metadata.resourceVersion)" "$rv"
	run grep -c 'belongs to apply set' "$SYNC_LOG"
	assert_output 0
	kill -TERM "$SYNC2_PID"
	wait "$SYNC2_PID"
	SYNC2_PID=""

	# moved with --overwrite-set (keel sync --once): now a's sync is the one
	# refused, once, and the object stays b's
	run keel sync "$B" --set sb --once --overwrite-set
	assert_success
	assert_output --partial 'task/default/shared configured (moved from apply set "sa")'
	assert_output --partial 'task/default/gone pruned'
	rv=$(keel get task shared -o json | jq -r .metadata.resourceVersion)
	n=$(passes)
	wait_passes $((n + 3))
	run grep -c -F 'task/shared belongs to apply set "sb", not "sa"' "$SYNC_LOG"
	assert_output 1
	assert_equal "$(keel get task shared -o json | jq -r '.metadata.labels["keel/apply-set"]')" sb
	assert_equal "$(keel get task shared -o json | jq -r .metadata.resourceVersion)" "$rv"
}

@test "--metrics-listen serves the sync's counters as Prometheus text" {
	task_yaml m1 >"$R/m1.yaml"
	task_yaml m2 >"$R/m2.yaml"
	sync_start --metrics-listen 127.0.0.1:0
	port=$(sed -n 's|.*sync metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$SYNC_LOG" | head -1)
	[ -n "$port" ]
	run curl -sf "http://127.0.0.1:$port/metrics"
	assert_success
	assert_line 'keel_sync_passes_total{set="t"} 1'
	assert_line 'keel_sync_created_total{set="t"} 2'
	assert_line 'keel_sync_errors_total{set="t"} 0'
	assert_line '# TYPE keel_sync_pruned_total counter'
	rm "$R/m2.yaml"
	wait_for 100 bash -c "curl -sf http://127.0.0.1:$port/metrics | grep -qx 'keel_sync_pruned_total{set=\"t\"} 1'"
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/other"
	assert_output 404
	run "$KEEL" sync "$R" --set t --once --metrics-listen nonsense
	assert_failure
	assert_output --partial "error: --metrics-listen"
}

@test "a FIFO named *.yaml is an error at its path, not a hang: passes go on and SIGTERM stops the sync" {
	ns_yaml fifo >"$R/a.yaml"
	sync_start --interval 1s
	n=$(passes)
	mkfifo "$R/pipe.yaml"
	wait_passes $((n + 2))
	grep -Eq "^[^ ]+ error $R/pipe.yaml: not a regular file \(a FIFO\); not read$" "$SYNC_LOG"
	run last_pass
	assert_output --partial '1 error; 1 broken file left as it was'
	assert exists namespace fifo
	sync_stop
	# keel apply does not hang on it either, and applies nothing
	run timeout 10 "$KEEL" apply -R -f "$R"
	assert_failure 1
	assert_output --partial "error: $R/pipe.yaml: not a regular file (a FIFO); not read"
}

@test "a new file duplicating an object does not take it over: the file that had it keeps it; at a fresh start both are errors and nothing is pruned" {
	task_yaml web busybox:1 >"$R/web.yaml"
	task_yaml other >"$R/other.yaml"
	sync_start
	uid=$(uid_of task web)
	n=$(passes)
	task_yaml web busybox:9 >"$R/aa-dup.yaml" # sorts first
	wait_passes $((n + 1))
	grep -q "$R/aa-dup.yaml:1:1: task/web: already defined at $R/web.yaml:1:1, the file that defined it before; this copy is not applied" "$SYNC_LOG"
	run last_pass
	assert_output --partial '1 error; 1 broken file left as it was'
	refute_output --partial "prune skipped: $R/web.yaml"
	assert_equal "$(image_of web)" busybox:1
	assert_equal "$(uid_of task web)" "$uid"
	# the long-standing file is still applied: an edit there goes through
	n=$(passes)
	task_yaml web busybox:2 >"$R/web.yaml"
	wait_passes $((n + 1))
	assert_equal "$(image_of web)" busybox:2
	sync_stop

	# a fresh start knows no history: both copies are errors, the object is
	# left as it is, and the pass prunes nothing
	rm "$R/other.yaml"
	sync_start
	grep -q "$R/aa-dup.yaml:1:1: task/web: defined twice (also at $R/web.yaml:1:1)" "$SYNC_LOG"
	grep -q "$R/web.yaml:1:1: task/web: defined twice (also at $R/aa-dup.yaml:1:1)" "$SYNC_LOG"
	run last_pass
	assert_output --partial '2 broken files left as they were; prune skipped'
	assert_equal "$(image_of web)" busybox:2
	assert exists task other
	# the stray copy removed: web.yaml is applied, other.yaml's task pruned
	n=$(passes)
	rm "$R/aa-dup.yaml"
	wait_passes $((n + 1))
	wait_for 50 gone task other
	assert_equal "$(uid_of task web)" "$uid"
}

@test "a dangling *.yaml symlink is a warning at its path: the prune of other files goes on, and what it held when good is kept" {
	task_yaml a >"$R/a.yaml"
	task_yaml b >"$BATS_TEST_TMPDIR/b-target.yaml"
	ln -s "$BATS_TEST_TMPDIR/b-target.yaml" "$R/b.yaml"
	task_yaml c >"$R/c.yaml"
	sync_start
	assert exists task b
	n=$(passes)
	rm "$BATS_TEST_TMPDIR/b-target.yaml" "$R/c.yaml" # b.yaml dangles, c leaves
	wait_passes $((n + 1))
	wait_for 50 gone task c
	assert exists task b # it was good before: kept, as a broken file's objects are
	grep -Eq "^[^ ]+ warn  $R/b.yaml: skipped: dangling symlink to $BATS_TEST_TMPDIR/b-target.yaml$" "$SYNC_LOG"
	! grep -Eq ' (error|warn) +(error|warning): ' "$SYNC_LOG" # one level word, not two
	run last_pass
	refute_output --partial 'prune skipped'
	sync_stop
	# at a fresh start it holds nothing known, and does not block the prune
	task_yaml d >"$R/d.yaml"
	sync_start
	run last_pass
	refute_output --partial 'prune skipped'
	assert exists task d
	# the link removed: what it held is pruned
	n=$(passes)
	rm "$R/b.yaml" "$R/d.yaml"
	wait_passes $((n + 1))
	wait_for 50 gone task d
}

@test "a git-sync style root (current -> wt-A, swapped to wt-B): the set is named after the link, and the swap is seen at once" {
	G=$BATS_TEST_TMPDIR/gs
	mkdir -p "$G/wt-a" "$G/wt-b"
	task_yaml a >"$G/wt-a/a.yaml"
	task_yaml b >"$G/wt-a/b.yaml"
	task_yaml a >"$G/wt-b/a.yaml"
	ln -s wt-a "$G/current"
	"$KEEL" sync "$G/current" --interval 10m >>"$SYNC_LOG" 2>&1 &
	SYNC_PID=$!
	wait_passes 1
	grep -Eq "as apply set \"current-[0-9a-f]{8}\"" "$SYNC_LOG"
	set=$(keel get task a -o json | jq -r '.metadata.labels["keel/apply-set"]')
	[[ "$set" == current-* ]]
	assert exists task b
	ln -sfn wt-b "$G/current.tmp"
	mv -T "$G/current.tmp" "$G/current"
	wait_passes 2 # long before the 10m interval
	wait_for 50 gone task b
	assert exists task a
	sync_stop
	# restarted on the other target, the set is the same one: no conflict
	task_yaml c >"$G/wt-b/c.yaml"
	run "$KEEL" sync "$G/current" --once
	assert_success
	refute_output --partial 'belongs to apply set'
	assert_equal "$(keel get task c -o json | jq -r '.metadata.labels["keel/apply-set"]')" "$set"
}
