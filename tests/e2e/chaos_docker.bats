#!/usr/bin/env bats
# Crash tests on real Docker containers (the cluster: docker_cluster.bash):
# kill -9 of the server in the middle of a rolling update. The other Docker
# chaos cases live beside the features they test: kill -9 of an agent under
# a Deployment in deployments_docker.bats, a dockerd restart under a running
# agent in agent_docker.bats.

load helpers
load docker_cluster

# updated_between N: at least N, and not all 4, Tasks of web have the new template
updated_between() {
	local n
	n=$(tasks_json web | jq --arg h "$old_hash" '[.items[] | select(.metadata.labels["keel/template-hash"] != $h)] | length')
	[ "$n" -ge "$1" ] && [ "$n" -lt 4 ]
}

@test "chaos docker: kill -9 of the server twice in a rolling update: it finishes, one container per Task, all of the new template" {
	deployment web 1
	wait_for 60 all_up web 4
	old_hash=$(hashes web)
	old_uids=$(ready_tasks web | awk '{print $1}')
	(while :; do
		tasks_json web 2>/dev/null | jq '.items | length'
		sleep 0.1
	done) >"$BATS_TEST_TMPDIR/samples" 2>/dev/null &
	WATCH_PID=$! # teardown stops it
	# each new replica ready 2 s after it starts: the rollout stays in
	# between for seconds, long enough to be caught there twice (the
	# agents start containers in parallel; without it the whole rollout
	# could pass between two polls)
	deployment web 2 2
	for at in 1 2; do
		wait_for 60 updated_between "$at"
		kill -9 "$SERVER_PID"
		wait "$SERVER_PID" 2>/dev/null || true
		echo "# killed the server at $(running_containers | wc -l) running containers" >&3
		keel_server_start "${GRACE[@]}" --listen "127.0.0.1:$SERVER_PORT"
	done
	run keel rollout status deployment web --timeout 90s
	assert_success
	assert_output --partial 'deployment "web" successfully rolled out'
	# exactly one running container per Task, on its node, nothing else on any node
	wait_for 60 all_up web 4
	new_hash=$(hashes web)
	[ "$(wc -l <<<"$new_hash")" = 1 ] && [ "$new_hash" != "$old_hash" ]
	# never more than replicas + maxSurge = 5 Tasks, across the kills
	max=$(sort -n "$BATS_TEST_TMPDIR/samples" | tail -1)
	echo "# Tasks at most $max over $(wc -l <"$BATS_TEST_TMPDIR/samples") samples" >&3
	[ "$max" -le 5 ]
	# every running container is a new Task's, with the new environment
	for n in "${NODES[@]}"; do
		for cid in $(docker ps -q --filter "label=keel.node=$(node "$n")"); do
			uid=$(docker inspect -f '{{index .Config.Labels "keel.task.uid"}}' "$cid")
			tasks_json web | jq -e --arg u "$uid" --arg h "$new_hash" \
				'[.items[] | select(.metadata.uid == $u and .metadata.labels["keel/template-hash"] == $h)] | length == 1' >/dev/null
			docker inspect -f '{{join .Config.Env " "}}' "$cid" | grep -qw VERSION=2
		done
	done
	# the old Tasks' containers are gone, not only stopped
	for uid in $old_uids; do
		wait_for 30 bash -c "[ -z \"\$(docker ps -aq --filter label=keel.task.uid=$uid)\" ]"
	done
}
