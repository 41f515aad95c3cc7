#!/usr/bin/env bats
# Crash and chaos tests against the real binaries: kill -9 of the server at
# random moments of a write stream and in the middle of a rolling update,
# kill -9 of an agent under a Deployment (process runtime), a full store and
# a restart with another --store-size, and 1,000 idle watches plus a
# slowloris client while /healthz and reads must still answer promptly.
# The Docker variants are in chaos_docker.bats and deployments_docker.bats.

load helpers

setup() {
	export -f keel # for the bash -c conditions of wait_for
	AGENT_LOGS=()
	AGENT_PIDS=()
}

teardown() {
	local p
	for p in "${AGENT_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	keel_server_stop KILL
	# sanitizer builds: any report in a server's or agent's log fails the test
	! grep -sE "AddressSanitizer|LeakSanitizer|runtime error:" "${SERVER_LOG:-/dev/null}" \
		"$BATS_TEST_TMPDIR"/*.log "${AGENT_LOGS[@]}"
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
	keel get nodes >&2 || true
	keel get tasks -o wide >&2 || true
	keel get deploy -o json 2>/dev/null | jq -c '.items[] | .status' >&2 || true
	tail -20 "$SERVER_LOG" >&2 || true
	return 1
}

@test "chaos: kill -9 five times during 2,000 creates and applies from 4 clients: every acknowledged write is there, at its revision" {
	# The writer starts, kills and restarts the server itself (its port
	# changes every start) and checks after each restart; see its header.
	run python3 "$KEEL_SRC/tests/e2e/chaos_writes.py" "$KEEL" "$BATS_TEST_TMPDIR/data" \
		"$BATS_TEST_TMPDIR/writes-server.log" --ops 2000 --clients 4 --kills 5
	printf '%s\n' "${lines[@]}" | sed 's/^/# /' >&3
	assert_success
	[ "$(grep -c '^cycle [0-9]: killed after' <<<"$output")" = 5 ]
	stored=$(sed -n 's/^done: .* \([0-9]*\) objects stored, revision \([0-9]*\)$/\1 \2/p' <<<"$output")
	[ -n "$stored" ]
	# and once more by hand, as a user would: the store opens, keel get works
	keel_server_start --controllers=none
	run keel get tasks -o json
	assert_success
	assert_equal "$(jq '.items | length' <<<"$output") $(jq -r .metadata.resourceVersion <<<"$output")" "$stored"
	! grep -E '^\S+ (warn|error) ' "$SERVER_LOG"
}

# fill NAME-PREFIX: creates 60 KB Tasks until the store refuses one; the
# acknowledged names go to $BATS_TEST_TMPDIR/acked, the last answer to
# $BATS_TEST_TMPDIR/answer. Prints the last HTTP code.
fill() {
	local big i code=""
	big=$(head -c 60000 /dev/zero | tr '\0' a)
	for i in $(seq 1 200); do
		printf '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"%s-%d"},"spec":{"image":"b","args":["%s"]}}' \
			"$1" "$i" "$big" >"$BATS_TEST_TMPDIR/obj"
		code=$(api POST /apis/keel/v1/namespaces/default/tasks --data-binary @"$BATS_TEST_TMPDIR/obj" \
			-o "$BATS_TEST_TMPDIR/answer" -w '%{http_code}')
		[ "$code" = 201 ] || break
		echo "$1-$i $(jq -r .metadata.resourceVersion "$BATS_TEST_TMPDIR/answer")" >>"$BATS_TEST_TMPDIR/acked"
	done
	echo "$code"
}

# stored: "NAME RV" lines of every Task, sorted.
stored() { keel get tasks -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.resourceVersion)"' | sort; }

@test "chaos: a full store is 507 and reads keep working; restarted with a larger --store-size nothing is lost, and with a smaller one nothing breaks" {
	: >"$BATS_TEST_TMPDIR/acked"
	keel_server_start --controllers=none --store-size 1Mi
	run fill a
	assert_output 507
	[ "$(jq -r .reason "$BATS_TEST_TMPDIR/answer")" = InsufficientStorage ]
	jq -r .message "$BATS_TEST_TMPDIR/answer" | grep -F -- "--store-size"
	n_full=$(wc -l <"$BATS_TEST_TMPDIR/acked")
	[ "$n_full" -ge 5 ]
	# reads keep working; so does a delete (the map keeps a reserve for them)
	run keel get task a-1 -o name
	assert_success
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"

	# kill -9 on a full store, then a larger map: everything is there, as it was
	keel_server_stop KILL
	keel_server_start --controllers=none --store-size 4Mi
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"
	rev_before=$(keel get tasks -o json | jq -r .metadata.resourceVersion)
	run fill b
	assert_output 507
	n_more=$(($(wc -l <"$BATS_TEST_TMPDIR/acked") - n_full))
	[ "$n_more" -gt "$n_full" ]
	[ "$(keel get task b-1 -o json | jq -r .metadata.resourceVersion)" -gt "$rev_before" ]
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"

	# a map smaller than the data: the server still opens it (LMDB keeps
	# the file's size), every object reads back, and writes that would
	# grow it are 507 -- nothing is cut off or corrupted
	keel_server_stop TERM
	keel_server_start --controllers=none --store-size 1Mi
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"
	run fill c
	assert_output 507
	[ "$(jq -r .reason "$BATS_TEST_TMPDIR/answer")" = InsufficientStorage ]
	run keel delete task a-1
	assert_success
	sed -i '/^a-1 /d' "$BATS_TEST_TMPDIR/acked"
	keel_server_stop KILL
	# the old flag name still works, as an alias
	keel_server_start --controllers=none --store-max-bytes 16Mi
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"
	[ "$(api POST /apis/keel/v1/namespaces/default/tasks -o /dev/null -w '%{http_code}' \
		-d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"d"},"spec":{"image":"b"}}')" = 201 ]
	run "$KEEL" server --help
	assert_output --partial "--store-size SIZE"
	# the log's warnings are the 507 answers, and nothing else
	run grep -E '^\S+ (warn|error) ' "$SERVER_LOG"
	[ "$(grep -vc ': 507 store is full' <<<"$output")" = 0 ]
}
