#!/usr/bin/env bats
# Garbage collection end to end: a `keel server` running only the gc
# controller, owners and dependents made by hand with ownerReferences (no
# Deployment controller needed), finalizers, Terminating namespaces and
# Event expiry, checked with the CLI and the API as a user would.

load helpers

setup() {
	keel_server_start --controllers=gc --event-ttl 3s
	export -f keel
}

teardown() {
	if [ -n "${GC_PID:-}" ]; then
		kill "$GC_PID" 2>/dev/null || true
		wait "$GC_PID" 2>/dev/null || true
	fi
	keel_server_stop
	! grep -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"
	[ -z "${GC_PID:-}" ] || ! grep -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$GC_LOG"
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
	cat "$SERVER_LOG" >&2
	return 1
}

# task NAME [NAMESPACE] [OWNER-NAME OWNER-UID] [FINALIZER]: applies a Task.
task() {
	local name=$1 ns=${2:-default} owner=${3:-} uid=${4:-} fin=${5:-}
	{
		echo "apiVersion: keel/v1"
		echo "kind: Task"
		echo "metadata:"
		echo "  name: $name"
		echo "  namespace: $ns"
		[ -z "$owner" ] || echo "  ownerReferences: [{apiVersion: keel/v1, kind: Task, name: $owner, uid: $uid}]"
		[ -z "$fin" ] || echo "  finalizers: [$fin]"
		echo "spec: {image: busybox}"
	} >"$BATS_TEST_TMPDIR/$name.yaml"
	keel apply -f "$BATS_TEST_TMPDIR/$name.yaml" >/dev/null
}
# merge PATH JSON: a merge patch (the api helper would send application/json)
merge() {
	curl -sf -X PATCH -H "Authorization: Bearer $KEEL_TOKEN_VALUE" \
		-H 'Content-Type: application/merge-patch+json' -d "$2" "$KEEL_URL$1" >/dev/null
}
uid_of() { keel get task "$1" -n "${2:-default}" -o json | jq -r .metadata.uid; }
gone() { ! keel get task "$1" -n "${2:-default}" >/dev/null 2>&1; }

@test "gc: deleting an owner deletes its dependents (background), not unrelated tasks" {
	task owner
	uid=$(uid_of owner)
	task dep-1 default owner "$uid"
	task dep-2 default owner "$uid"
	task bystander
	run keel delete task owner
	assert_success
	wait_for 100 gone dep-1
	wait_for 100 gone dep-2
	sleep 1
	run keel get tasks -o name
	assert_output "task/bystander"
	grep -q 'gc: deleted Task default/dep-1 (its owner is gone)' "$SERVER_LOG"
}

@test "gc: --cascade=orphan keeps the dependents, without the ownerReference" {
	task owner
	uid=$(uid_of owner)
	task dep default owner "$uid"
	run keel delete task owner --cascade=orphan
	assert_success
	wait_for 100 gone owner
	keel get task dep
	run bash -c "keel get task dep -o json | jq -c '.metadata.ownerReferences // []'"
	assert_output '[]'
	sleep 1
	keel get task dep # still there once gc has settled
}

@test "gc: an object with a finalizer stays with a deletionTimestamp until the finalizer goes" {
	task held default "" "" example.com/hold
	run keel delete task held
	assert_success
	sleep 1
	run bash -c "keel get task held -o json | jq -r '.metadata.deletionTimestamp != null, .metadata.finalizers[0]'"
	assert_output $'true\nexample.com/hold'
	# a second delete changes nothing
	run api DELETE /apis/keel/v1/namespaces/default/tasks/held
	[ "$(echo "$output" | jq -r '.metadata.finalizers[0]')" = example.com/hold ]
	merge /apis/keel/v1/namespaces/default/tasks/held '{"metadata":{"finalizers":null}}'
	wait_for 50 gone held
}

@test "gc: a dependent of an owner that still exists is left alone" {
	task owner
	uid=$(uid_of owner)
	task dep default owner "$uid"
	sleep 2
	keel get task dep
	keel get task owner
	# a reference to an owner that never existed (wrong uid) is dangling: the dependent goes
	task stray default owner 00000000-0000-0000-0000-000000000000
	wait_for 100 gone stray
	keel get task dep
}

@test "gc: deleting a namespace deletes what is in it, then the namespace; creates meanwhile are 403" {
	keel create namespace shop 2>/dev/null ||
		api POST /apis/keel/v1/namespaces -d '{"apiVersion":"keel/v1","kind":"Namespace","metadata":{"name":"shop"}}' >/dev/null
	task a shop
	task b shop "" "" example.com/hold # holds the namespace until released
	task keep default
	run api DELETE /apis/keel/v1/namespaces/shop
	[ "$(echo "$output" | jq -r .status.phase)" = Terminating ]
	wait_for 100 gone a shop
	run api POST /apis/keel/v1/namespaces/shop/tasks -d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"late"},"spec":{"image":"x"}}'
	[ "$(echo "$output" | jq -r .code)" = 403 ]
	[ "$(echo "$output" | jq -r .message)" = "unable to create new content in namespace shop because it is being terminated" ]
	run bash -c "keel get namespace shop -o json | jq -r .status.phase"
	assert_output Terminating
	merge /apis/keel/v1/namespaces/shop/tasks/b '{"metadata":{"finalizers":null}}'
	wait_for 100 bash -c '! keel get namespace shop >/dev/null 2>&1'
	keel get task keep
}

@test "gc: foreground deletion deletes the dependents first, then the owner" {
	task owner
	uid=$(uid_of owner)
	task dep default owner "$uid"
	run keel delete task owner --cascade=foreground
	assert_success
	wait_for 100 gone dep
	wait_for 100 gone owner
}

@test "gc: Events older than --event-ttl expire" {
	api POST /apis/keel/v1/namespaces/default/events -d "{\"apiVersion\":\"keel/v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"old.1\"},\"involvedObject\":{\"kind\":\"Task\",\"name\":\"x\"},\"reason\":\"Test\",\"message\":\"m\",\"lastTimestamp\":\"$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
	api POST /apis/keel/v1/namespaces/default/events -d "{\"apiVersion\":\"keel/v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"new.1\"},\"involvedObject\":{\"kind\":\"Task\",\"name\":\"x\"},\"reason\":\"Test\",\"message\":\"m\",\"lastTimestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
	ev_gone() { [ "$(api GET /apis/keel/v1/namespaces/default/events/"$1" | jq -r .code)" = 404 ]; }
	wait_for 50 ev_gone old.1
	[ "$(api GET /apis/keel/v1/namespaces/default/events/new.1 | jq -r .metadata.name)" = new.1 ]
	# and the young one goes once it is older than the TTL (3 s)
	wait_for 100 ev_gone new.1
}

# The in-process controllers share their informers (one cache and one watch
# stream per kind): gc watches every kind, and the scheduler, tasks and
# nodes controllers, which also watch Tasks, Nodes and Deployments, add no
# stream of their own (before, 4 Task caches and 11 streams in all).
@test "controllers: all loops of one server share one watch per kind" {
	keel_server_stop
	keel_server_start
	kinds=$(api GET /apis/keel/v1 | jq '[.resources[] | select(.name | contains("/") | not)] | length')
	[ "$kinds" -ge 4 ]
	watchers() { api GET /metrics | awk '/^keel_watchers /{print $2}'; }
	export -f watchers api
	export KEEL_TOKEN_VALUE
	wait_for 100 bash -c "[ \"\$(watchers)\" = $kinds ]"
	for i in 1 2 3 4 5; do
		[ "$(watchers)" -le "$kinds" ]
		sleep 0.3
	done
}

# An owner deleted and made again under the same name while the gc's
# informers were away (here: the server restarting) comes back in their
# relist as an update of the same key with a new uid; the old owner is gone
# all the same, so what depended on it must go too, not wait for the
# 10-minute safety-net sweep.
@test "gc: an owner replaced (same name, new uid) while the watch was down: its old dependents go after the relist" {
	keel_server_stop
	port=$(free_port)
	keel_server_start --controllers=none --listen "127.0.0.1:$port"
	GC_LOG=$BATS_TEST_TMPDIR/gc.log
	"$KEEL" controller gc >"$GC_LOG" 2>&1 &
	GC_PID=$!
	task owner
	uid=$(uid_of owner)
	task dep default owner "$uid"
	wait_for 100 grep -q 'controller gc: started' "$GC_LOG"
	sleep 1
	keel get task dep >/dev/null # its owner exists: it stays
	# down long enough that the informers' reconnect backoff is seconds
	keel_server_stop
	sleep 4
	keel_server_start --controllers=none --listen "127.0.0.1:$port"
	keel delete task owner >/dev/null
	task owner
	[ "$(uid_of owner)" != "$uid" ]
	wait_for 150 gone dep
	grep -q 'gc: deleted Task default/dep (its owner is gone)' "$GC_LOG"
}
