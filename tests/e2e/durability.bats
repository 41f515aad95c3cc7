#!/usr/bin/env bats
# The store keeps what it acknowledged across a clean restart. kill -9 in
# the middle of a stream of writes (five times, creates and applies, every
# acknowledged resourceVersion checked) is in chaos.bats.

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

@test "a second server on the same data directory is refused" {
	run "$KEEL" server --data-dir "$KEEL_DATA" --listen 127.0.0.1:0
	assert_failure
	assert_output --partial "in use"
	# the first one is unharmed
	run curl -sf "$KEEL_URL/healthz"
	assert_success
}
