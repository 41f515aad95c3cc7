#!/usr/bin/env bats
# Deployments end to end on real Docker containers: a `keel server` running
# every controller (scheduler, tasks, nodes, gc) with short
# --node-grace-period / --node-eviction-timeout, and three
# `keel agent --runtime docker` nodes on this host, each with its own name
# and data directory. A Deployment of keel/busybox:latest (built by
# tests/e2e/busybox-image.sh; .ci/docker-up starts the engine and builds
# it) comes up as labelled containers spread over the agents, rolls out a
# template change, survives the loss of a node, and leaves nothing behind
# when deleted. Every test skips, saying why, where no engine answers or
# the image is missing.
# The cluster and its helpers are in docker_cluster.bash.

load helpers
load docker_cluster

@test "deployments docker: 4 replicas run as containers over 3 agents; an env change rolls out within maxUnavailable" {
	deployment web 1
	run keel rollout status deployment web --timeout 60s
	assert_success
	wait_for 60 all_up web 4
	# spread: every agent runs at least one replica (E-PVM, equal nodes)
	[ "$(running_containers | awk '{print $2}' | sort -u | wc -l)" = 3 ]
	old_hash=$(hashes web)
	[ "$(wc -l <<<"$old_hash")" = 1 ]
	old_uids=$(ready_tasks web | awk '{print $1}')
	for n in "${NODES[@]}"; do
		for cid in $(docker ps -q --filter "label=keel.node=$(node "$n")"); do
			docker inspect -f '{{join .Config.Env " "}}' "$cid" | grep -qw VERSION=1
		done
	done

	samples=$BATS_TEST_TMPDIR/samples
	(for _ in $(seq 1 600); do
		keel get deploy web -o json |
			jq -c '"deploy \([.status.readyReplicas, .status.replicas, .status.updatedReplicas])"'
		tasks_json web | jq -c '"tasks \([([.items[] | select(.status.ready == true)] | length), (.items | length)])"'
		echo "\"containers $(running_containers | wc -l)\""
		sleep 0.1
	done) >"$samples" 2>&1 &
	sampler=$!
	deployment web 2
	run keel rollout status deployment web --timeout 60s
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	assert_success
	assert_output --partial 'deployment "web" successfully rolled out'
	sort "$samples" | uniq -c >&2
	# never below replicas - maxUnavailable = 3 ready, never above replicas + maxSurge = 5
	field() { grep "^\"$1 " "$samples" | tr -d '"' | sed "s/^$1 //"; }
	[ -z "$(field deploy | jq -c 'select(.[0] < 3 or .[1] > 5)')" ]
	[ -z "$(field tasks | jq -c 'select(.[0] < 3 or .[1] > 5)')" ]
	[ -z "$(field containers | awk '$1 < 3')" ]
	# it went through intermediate states (some but not all updated)
	[ -n "$(field deploy | jq -c 'select(.[2] > 0 and .[2] < 4)')" ]

	wait_for 60 all_up web 4
	new_hash=$(hashes web)
	[ "$(wc -l <<<"$new_hash")" = 1 ] && [ "$new_hash" != "$old_hash" ]
	# every running container is a new Task's, with the new environment
	for n in "${NODES[@]}"; do
		for cid in $(docker ps -q --filter "label=keel.node=$(node "$n")"); do
			uid=$(docker inspect -f '{{index .Config.Labels "keel.task.uid"}}' "$cid")
			keel get tasks -o json | jq -e --arg u "$uid" --arg h "$new_hash" \
				'[.items[] | select(.metadata.uid == $u and .metadata.labels["keel/template-hash"] == $h)] | length == 1' >/dev/null
			docker inspect -f '{{join .Config.Env " "}}' "$cid" | grep -qw VERSION=2
		done
	done
	# the old Tasks' containers are gone, not only stopped
	for uid in $old_uids; do
		wait_for 30 bash -c "[ -z \"\$(docker ps -aq --filter label=keel.task.uid=$uid)\" ]"
	done
}

@test "deployments docker: kill -9 of an agent: its Tasks are Failed NodeLost, replaced on the others; back, it stops their containers" {
	deployment web 1
	wait_for 60 all_up web 4
	# the victim: a node with the most replicas
	victim_node=$(ready_tasks web | awk '{print $2}' | sort | uniq -c | sort -rn | head -1 | awk '{print $2}')
	victim=${victim_node##*-}
	survivors=()
	for n in "${NODES[@]}"; do [ "$n" = "$victim" ] || survivors+=("$n"); done
	lost=$(ready_tasks web | awk -v n="$victim_node" '$2 == n {print $1}')
	[ -n "$lost" ]
	# record every change of the Tasks from here on
	rv=$(tasks_json web | jq -r .metadata.resourceVersion)
	curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" \
		"$KEEL_URL/apis/keel/v1/namespaces/default/tasks?watch=1&resourceVersion=$rv" \
		>"$BATS_TEST_TMPDIR/watch" 2>/dev/null &
	WATCH_PID=$!

	agent_stop "$victim" KILL
	# Docker does not stop the containers of a dead agent
	for uid in $lost; do
		[ -n "$(docker ps -q --filter "label=keel.task.uid=$uid")" ]
	done
	wait_for 30 node_ready_is "$victim" Unknown
	lost_as_nodelost() {
		local uid
		for uid in $lost; do
			# -R/fromjson?: the last line may still be half written
			jq -R --arg u "$uid" 'fromjson? | select(.object.metadata.uid == $u and
				.object.status.phase == "Failed" and .object.status.reason == "NodeLost") | .type' \
				"$BATS_TEST_TMPDIR/watch" | grep -q . || return 1
		done
	}
	wait_for 60 lost_as_nodelost
	# replaced on the surviving agents: 4 ready Tasks with a container each there
	wait_for 60 all_up web 4 "${survivors[@]}"
	[ -z "$(ready_tasks web | awk -v n="$victim_node" '$2 == n')" ]
	keel get deploy web -o json | jq -e '.status.readyReplicas == 4 and .status.availableReplicas == 4'
	# ... while the lost containers still run on the silent node
	for uid in $lost; do
		[ -n "$(docker ps -q --filter "label=keel.task.uid=$uid")" ]
	done
	run keel get events
	assert_output --partial "Failed (NodeLost): replacing it"

	# the agent comes back with the same name and data directory: it stops
	# (and removes) the containers of the Tasks no longer bound to it. The
	# tasks controller has deleted those Tasks by now, yet each container
	# gets its Task's 1 s grace period (recorded on the container), not
	# the agent's 30 s default: sleep as pid 1 ignores SIGTERM, so that
	# default would keep two of them running for a minute.
	agent_start "$victim"
	wait_for 30 node_ready_is "$victim" True
	no_lost_running() {
		local uid
		for uid in $lost; do
			[ -z "$(docker ps -q --filter "label=keel.task.uid=$uid")" ] || return 1
		done
	}
	wait_for 20 no_lost_running
	# the replacements were left alone, and nothing else runs on the node that came back
	all_up web 4
	[ -z "$(running_containers "$victim")" ]
	for uid in $lost; do
		wait_for 20 bash -c "[ -z \"\$(docker ps -aq --filter label=keel.task.uid=$uid)\" ]"
	done
}

@test "deployments docker: deleting the Deployment leaves no Tasks and no containers" {
	deployment web 1
	wait_for 60 all_up web 4
	[ "$(running_containers | wc -l)" = 4 ]
	run keel delete deployment web
	assert_success
	wait_for 60 bash -c "[ \"\$('$KEEL' get tasks -o json | jq '.items | length')\" = 0 ]"
	no_containers() {
		local n
		for n in "${NODES[@]}"; do
			[ -z "$(docker ps -aq --filter "label=keel.node=$(node "$n")")" ] || return 1
		done
	}
	wait_for 60 no_containers
	run keel get deploy web
	assert_failure
}
