/*
 * api/kind — the static table of keel's kinds.
 *
 * One table drives URL routing (plural), discovery (short names, scope,
 * subresources) and what a CLI user may type. Resolution is case-insensitive
 * because kubectl users type "Deployment", "deploy" and "DEPLOYMENTS" alike.
 * Task's short name is "tk": "t" would be too easy to hit by accident, and
 * "task"/"tasks" already resolve as singular and plural.
 */
#include "api/kind.h"

#include <string.h>
#include <strings.h>

#include "common/util.h"

static const char *const ns_short[] = {"ns", NULL};
static const char *const node_short[] = {"no", NULL};
static const char *const task_short[] = {"tk", NULL};
static const char *const deploy_short[] = {"deploy", NULL};
static const char *const event_short[] = {"ev", NULL};

static const struct api_kind kinds[] = {
    {"Deployment", "DeploymentList", "deployments", "deployment", deploy_short, true, true},
    {"Event", "EventList", "events", "event", event_short, true, false},
    {"Namespace", "NamespaceList", "namespaces", "namespace", ns_short, false, true},
    {"Node", "NodeList", "nodes", "node", node_short, false, true},
    {"Task", "TaskList", "tasks", "task", task_short, true, true},
};

/* Not in the table: served by server/lease.c, not the generic verbs. */
static const struct api_kind lease_kind = {"Lease", "LeaseList", "leases", "lease",
                                           NULL,    false,       false};

const struct api_kind *api_kind_lease(void)
{
	return &lease_kind;
}

const char *api_lease_reserved_for(const char *name)
{
	static const char *const leases[] = {"keel-scheduler", "keel-tasks", "keel-nodes",
	                                     "keel-gc"};
	for (size_t i = 0; name && i < ARRAY_SIZE(leases); i++)
		if (streq(name, leases[i]))
			return leases[i] + strlen("keel-");
	return NULL;
}

size_t api_kind_count(void)
{
	return ARRAY_SIZE(kinds);
}

const struct api_kind *api_kind_at(size_t i)
{
	return i < ARRAY_SIZE(kinds) ? &kinds[i] : NULL;
}

const struct api_kind *api_kind_by_kind(const char *kind)
{
	for (size_t i = 0; kind && i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return &kinds[i];
	return NULL;
}

const struct api_kind *api_kind_by_plural(const char *plural)
{
	for (size_t i = 0; plural && i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i].plural, plural) == 0)
			return &kinds[i];
	return NULL;
}

static bool kind_answers_to(const struct api_kind *k, const char *name)
{
	if (strcasecmp(k->kind, name) == 0 || strcasecmp(k->plural, name) == 0 ||
	    strcasecmp(k->singular, name) == 0)
		return true;
	for (const char *const *s = k->short_names; s && *s; s++)
		if (strcasecmp(*s, name) == 0)
			return true;
	return false;
}

const struct api_kind *api_kind_resolve(const char *name)
{
	if (!name || !*name)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kind_answers_to(&kinds[i], name))
			return &kinds[i];
	return NULL;
}

const char *api_kind_suggest(const char *name)
{
	if (!name || !*name)
		return NULL;
	/* Compare lower-cased, against plurals and singulars alike: "taks" is
	 * one edit from "task" and two from "tasks". The answer is the plural. */
	char low[64];
	size_t n = strlen(name);
	if (n >= sizeof low)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	const char *cands[2 * ARRAY_SIZE(kinds)];
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		cands[2 * i] = kinds[i].plural;
		cands[2 * i + 1] = kinds[i].singular;
	}
	const char *best = str_closest(low, cands, ARRAY_SIZE(cands));
	if (!best)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (best == kinds[i].plural || best == kinds[i].singular)
			return kinds[i].plural;
	return NULL;
}
