#!/usr/bin/env bats
# The store keeps what it acknowledged: across a clean restart, and across a
# kill -9 in the middle of a stream of writes.

load helpers

setup() { keel_server_start --controllers=none; }
teardown() { keel_server_stop KILL; }

@test "examples apply and read back, and survive a restart" {
	# (not all of examples/ at once: web-v2/ redefines web/'s Deployment)
	run keel apply -R -f "$KEEL_SRC/examples/hello" -f "$KEEL_SRC/examples/web"
	assert_success
	assert_line "namespace/web created"
	assert_line "deployment/web created"
	assert_line "task/hello created"
	before=$(keel get deployments -A -o json | jq -S '[.items[] | {name: .metadata.name, rv: .metadata.resourceVersion, uid: .metadata.uid, spec}]')
	rev_before=$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)

	keel_server_stop TERM
	keel_server_start --controllers=none
	after=$(keel get deployments -A -o json | jq -S '[.items[] | {name: .metadata.name, rv: .metadata.resourceVersion, uid: .metadata.uid, spec}]')
	rev_after=$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)
	assert_equal "$after" "$before"
	assert_equal "$rev_after" "$rev_before"
	run keel get task hello -o name
	assert_success
	assert_output "task/hello"

	# and applying the same manifests again changes nothing
	run keel apply -R -f "$KEEL_SRC/examples/hello" -f "$KEEL_SRC/examples/web"
	assert_success
	refute_line --partial "created"
	refute_line --partial "configured"
	rev_again=$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)
	assert_equal "$rev_again" "$rev_before"
}

@test "kill -9 during a stream of creates loses no acknowledged write" {
	acked=$BATS_TEST_TMPDIR/acked
	: >"$acked"
	# Four concurrent writers; a create is acknowledged when the server answers 201.
	for w in 1 2 3 4; do
		(
			for i in $(seq 1 400); do
				name="t-$w-$i"
				code=$(api POST /apis/keel/v1/namespaces/default/tasks -o /dev/null -w '%{http_code}' \
					-d "{\"apiVersion\":\"keel/v1\",\"kind\":\"Task\",\"metadata\":{\"name\":\"$name\"},\"spec\":{\"image\":\"busybox\"}}" \
					2>/dev/null) || break
				[ "$code" = 201 ] && echo "$name" >>"$acked"
			done
		) &
	done
	# Let the writers get going, then pull the plug.
	for i in $(seq 1 100); do
		[ "$(wc -l <"$acked")" -ge 100 ] && break
		sleep 0.05
	done
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
	wait
	n_acked=$(wc -l <"$acked")
	[ "$n_acked" -ge 100 ]

	keel_server_start --controllers=none
	keel get tasks -o json | jq -r '.items[].metadata.name' | sort >"$BATS_TEST_TMPDIR/stored"
	missing=$(sort "$acked" | comm -23 - "$BATS_TEST_TMPDIR/stored")
	assert_equal "$missing" ""
	# Revisions stay dense and ordered: the stored revision covers every object.
	rev=$(keel get tasks -o json | jq -r .metadata.resourceVersion)
	n_stored=$(wc -l <"$BATS_TEST_TMPDIR/stored")
	[ "$rev" -ge "$n_stored" ]
}

@test "a second server on the same data directory is refused" {
	run "$KEEL" server --data-dir "$KEEL_DATA" --listen 127.0.0.1:0
	assert_failure
	assert_output --partial "in use"
	# the first one is unharmed
	run curl -sf "$KEEL_URL/healthz"
	assert_success
}
