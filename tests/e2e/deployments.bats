#!/usr/bin/env bats
# End-to-end tests of the tasks controller (Deployments -> Tasks): a real
# `keel server` with its in-process controllers (scheduler, tasks, gc) and
# three simulated nodes (`keel agent --runtime sim --simulate 3`), driven
# with keel apply / scale / rollout.

load helpers

setup() {
	keel_server_start
	export -f keel # for the bash -c conditions of wait_for
	AGENT_LOG=$BATS_TEST_TMPDIR/agent.log
	"$KEEL" agent --runtime sim --simulate 3 --name sim --cpus 4 --memory 8Gi \
		--sim-start-delay 200ms >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 100 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 3 ]"
}

teardown() {
	if [ -n "${AGENT_PID:-}" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	keel_server_stop
	# sanitizer builds: any report in the agent's or server's log fails the test
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$AGENT_LOG" "$SERVER_LOG"
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
	keel get tasks -o wide >&2 || true
	keel get deploy -o json 2>/dev/null | jq -c '.items[] | .status' >&2 || true
	tail -20 "$SERVER_LOG" >&2 || true
	return 1
}

# deployment NAME IMAGE [REPLICAS] [EXTRA-SPEC-LINES]: writes NAME.yaml
# (replicas left out when REPLICAS is "")
deployment() {
	local f=$BATS_TEST_TMPDIR/$1.yaml
	{
		echo "apiVersion: keel/v1"
		echo "kind: Deployment"
		echo "metadata: {name: $1}"
		echo "spec:"
		[ -n "${3:-}" ] && echo "  replicas: $3"
		[ -n "${4:-}" ] && echo "$4"
		echo "  template:"
		echo "    metadata: {labels: {app: $1}}"
		echo "    spec:"
		echo "      image: $2"
		echo "      resources: {requests: {cpu: 100m, memory: 64Mi}}"
	} >"$f"
	echo "$f"
}

running() { keel get tasks -l "app=$1" -o json | jq '[.items[] | select(.status.phase == "Running" and .status.ready == true)] | length'; }
count() { keel get tasks -l "app=$1" -o json | jq '.items | length'; }
# all_running NAME N: exactly N Tasks, all Running and ready, and the status says so
all_running() {
	[ "$(count "$1")" = "$2" ] && [ "$(running "$1")" = "$2" ] &&
		keel get deploy "$1" -o json | jq -e ".status.readyReplicas == $2 and .status.replicas == $2" >/dev/null
}

@test "deployments: 6 replicas -> 6 Running Tasks named DEPLOY-HASH-SUFFIX, owned, labelled" {
	keel apply -f "$(deployment web nginx:1 6)"
	wait_for 150 all_running web 6
	run keel get deploy web -o json
	assert_success
	echo "$output" | jq -e '.status.observedGeneration == 1 and .status.updatedReplicas == 6 and .status.availableReplicas == 6 and .status.unavailableReplicas == 0'
	echo "$output" | jq -e '.status.conditions[] | select(.type == "Available") | .status == "True" and .reason == "MinimumReplicasAvailable"'
	echo "$output" | jq -e '.status.conditions[] | select(.type == "Progressing") | .status == "True" and .reason == "NewTemplateAvailable"'
	uid=$(echo "$output" | jq -r .metadata.uid)
	hash=$(keel get tasks -o json | jq -r '.items[0].metadata.labels["keel/template-hash"]')
	[ ${#hash} = 10 ]
	keel get tasks -o json | jq -e --arg uid "$uid" --arg h "$hash" '.items | all(
		(.metadata.name | test("^web-" + $h + "-[bcdfghjklmnpqrstvwxz2456789]{5}$")) and
		.metadata.labels["keel/template-hash"] == $h and .metadata.labels.app == "web" and
		.metadata.ownerReferences[0].uid == $uid and .metadata.ownerReferences[0].controller == true and
		.metadata.ownerReferences[0].blockOwnerDeletion == true and .spec.image == "nginx:1")'
	# spread over the three equal nodes by the scheduler
	[ "$(keel get tasks -o json | jq '[.items[].spec.nodeName] | unique | length')" = 3 ]
	run keel get events
	assert_output --partial "Scaled up revision 1 to 6 tasks"
}

@test "deployments: scale 6 -> 9 -> 2 with keel scale and apply; a manifest without replicas keeps the scaled value" {
	keel apply -f "$(deployment web nginx:1 "")"
	wait_for 100 all_running web 1
	first=$(keel get tasks -o name)
	sleep 1.1 # creationTimestamps have second precision: the first Task is the oldest
	run keel scale deployment web --replicas 6
	assert_success
	assert_output "deployment/web scaled"
	wait_for 150 all_running web 6
	keel scale deploy/web --replicas 9
	wait_for 150 all_running web 9
	# re-applying the manifest (no replicas in it) leaves 9
	run keel apply -f "$BATS_TEST_TMPDIR/web.yaml"
	assert_success
	sleep 0.5
	[ "$(keel get deploy web -o json | jq .spec.replicas)" = 9 ]
	all_running web 9
	# the manifest takes replicas over: down to 2, newest first, so the oldest stays
	keel apply -f "$(deployment web nginx:1 2)"
	wait_for 150 all_running web 2
	keel get tasks -o name | grep -qx "$first"
	run keel get events
	assert_output --partial "Scaled down revision 1 to 2 tasks"
}

@test "deployments: an image change rolls out, never below replicas - maxUnavailable ready; rollout status, history, undo" {
	keel apply -f "$(deployment web nginx:1 6)"
	run keel rollout status deployment web --timeout 60s
	assert_success
	assert_output --partial 'deployment "web" successfully rolled out'
	wait_for 100 all_running web 6
	keel apply -f "$(deployment web nginx:2 6)"
	# sample the Deployment's status during the rollout (25%/25% of 6: surge 2, unavailable 1)
	samples=$BATS_TEST_TMPDIR/samples
	(for _ in $(seq 1 300); do
		keel get deploy web -o json | jq -c '[.status.readyReplicas, .status.replicas, .status.updatedReplicas, .metadata.generation == .status.observedGeneration]'
		keel get tasks -l app=web -o json | jq -c '[([.items[] | select(.status.ready == true)] | length), (.items | length)] | "tasks \(.)"'
		sleep 0.05
	done) >"$samples" 2>&1 &
	sampler=$!
	run keel rollout status deployment web --timeout 60s
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	assert_success
	assert_output --partial 'Waiting for deployment "web" rollout to finish'
	assert_output --partial 'deployment "web" successfully rolled out'
	sort -u "$samples"
	# status: ready >= 6 - 1, total <= 6 + 2 at every sample
	bad=$(grep -v '^"tasks' "$samples" | jq -c 'select(.[0] < 5 or .[1] > 8)')
	[ -z "$bad" ]
	# the Tasks themselves, as listed: ready >= 5, at most 8
	bad=$(grep '^"tasks' "$samples" | tr -d '"' | sed 's/^tasks //' | jq -c 'select(.[0] < 5 or .[1] > 8)')
	[ -z "$bad" ]
	# it did go through intermediate states
	mid=$(grep -v '^"tasks' "$samples" | jq -c 'select(.[2] > 0 and .[2] < 6)')
	[ -n "$mid" ]
	wait_for 100 all_running web 6
	keel get tasks -o json | jq -e '.items | all(.spec.image == "nginx:2" and .metadata.annotations["keel/revision"] == "2")'

	run keel rollout history deployment web
	assert_success
	assert_line --regexp '^1 +[a-z0-9]{10} +nginx:1$'
	assert_line --regexp '^2 +[a-z0-9]{10} +nginx:2$'

	run keel rollout undo deployment web
	assert_success
	assert_output "deployment/web rolled back to revision 1"
	run keel rollout status deployment web --timeout 60s
	assert_success
	wait_for 100 all_running web 6
	keel get tasks -o json | jq -e '.items | all(.spec.image == "nginx:1" and .metadata.annotations["keel/revision"] == "3")'
	[ "$(keel get deploy web -o json | jq -r .spec.template.spec.image)" = nginx:1 ]
	# revision 1 became 3
	run keel rollout history deployment web
	refute_line --regexp '^1 '
	assert_line --regexp '^3 +[a-z0-9]{10} +nginx:1$'
	run keel rollout undo deployment web --to-revision 9
	assert_failure 1
	assert_output --partial 'unable to find revision 9 of deployment "web"'
	run keel get events
	assert_output --partial "Rolling out revision 2 (image nginx:2)"
	assert_output --partial "Revision 2 is available: 6 of 6 tasks ready"
}

@test "deployments: a Failed (NodeLost) Task is replaced" {
	keel apply -f "$(deployment web nginx:1 3)"
	wait_for 150 all_running web 3
	victim=$(keel get tasks -o name | head -1)
	victim=${victim#*/}
	curl -s -X PATCH -H "Authorization: Bearer $KEEL_TOKEN_VALUE" \
		-H 'Content-Type: application/merge-patch+json' \
		"$KEEL_URL/apis/keel/v1/namespaces/default/tasks/$victim/status" -d '{"status":{"phase":"Failed","reason":"NodeLost","ready":false}}' | jq -e '.status.phase == "Failed"'
	wait_for 150 bash -c "! keel get task $victim >/dev/null 2>&1"
	wait_for 150 all_running web 3
	run keel get events
	assert_output --partial "Task $victim Failed (NodeLost): replacing it"
}

@test "deployments: rollout status exits 1 when progressDeadlineSeconds passes" {
	f=$(deployment stuck nginx:1 2 "  progressDeadlineSeconds: 2")
	# no node has this label: the Tasks stay Pending
	sed -i 's/^      image: nginx:1$/      image: nginx:1\n      nodeSelector: {disk: none}/' "$f"
	keel apply -f "$f"
	run keel rollout status deployment stuck --timeout 30s
	assert_failure 1
	assert_output --partial 'deployment "stuck" exceeded its progress deadline'
	keel get deploy stuck -o json | jq -e '.status.conditions[] | select(.type == "Progressing") | .status == "False" and .reason == "ProgressDeadlineExceeded"'
	keel get deploy stuck -o json | jq -e '.status.conditions[] | select(.type == "Available") | .status == "False"'
}

@test "deployments: deleting the Deployment deletes its Tasks" {
	keel apply -f "$(deployment web nginx:1 4)"
	wait_for 150 all_running web 4
	keel delete deployment web
	wait_for 150 bash -c '[ "$(keel get tasks -o json | jq ".items | length")" = 0 ]'
}

@test "deployments: a template with restartPolicy OnFailure is 422, and no Task is made" {
	f=$(deployment web nginx:1 2)
	sed -i 's/^      image: nginx:1$/      image: nginx:1\n      restartPolicy: OnFailure/' "$f"
	grep -q 'restartPolicy: OnFailure' "$f"
	run keel apply -f "$f"
	assert_failure
	assert_output --partial 'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'
	run keel get deploy web
	assert_failure
	[ "$(count web)" = 0 ]
}

@test "deployments: spec.selector is immutable (a change would leak the old Tasks)" {
	keel apply -f "$(deployment web nginx:1 2)"
	wait_for 150 all_running web 2
	f=$(deployment web nginx:1 2 "  selector: {matchLabels: {app: web, v: two}}")
	sed -i 's/labels: {app: web}/labels: {app: web, v: two}/' "$f"
	run keel apply -f "$f"
	assert_failure
	assert_output --partial 'spec.selector: field is immutable'
	# nothing changed: the same two Tasks, counted
	sleep 1
	all_running web 2
	keel get deploy web -o json | jq -e '.spec.selector == {"matchLabels": {"app": "web"}}'
}

@test "deployments: scale and rollout usage errors" {
	run keel scale deployment web
	assert_failure 2
	assert_output --partial "needs --replicas N"
	run keel scale task web --replicas 2
	assert_failure 2
	assert_output --partial "works on deployments"
	run keel scale deployment nope --replicas 2
	assert_failure 1
	assert_output --partial "NotFound"
	run keel rollout stats deployment web
	assert_failure 2
	assert_output --partial 'did you mean "status"'
	run keel rollout status deployment web --timeout soon
	assert_failure 2
	run keel rollout undo deployment nope
	assert_failure 1
	assert_output --partial "NotFound"
	run keel rollout --help
	assert_success
	assert_output --partial "keel rollout undo deployment web"
}
