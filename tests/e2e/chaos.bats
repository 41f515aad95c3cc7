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
