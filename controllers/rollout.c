/*
 * rollout — the arithmetic of Deployments, kept apart from the controller
 * (tasks.c) so that every rule can be checked by a unit test with plain
 * numbers: how maxSurge/maxUnavailable resolve (Kubernetes rounds surge up
 * and unavailability down, so that a rollout is never blocked by rounding
 * and never dips below what the user allowed), how many Tasks one step
 * creates and deletes (the two halves of Kubernetes' rolling update:
 * reconcileNewReplicaSet and reconcileOldReplicaSets, counted on live
 * Tasks instead of ReplicaSet sizes), the scale-down order (kubelet's
 * ActivePods ordering, reduced to what a Task has), the template hash and
 * the revision history kept in an annotation.
 */
#include "controllers/rollout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/kerr.h"
#include "common/util.h"

static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
#define ALPHABET_LEN (sizeof(alphabet) - 1)

static long lmin(long a, long b)
{
	return a < b ? a : b;
}

static long lmax(long a, long b)
{
	return a > b ? a : b;
}

/* ---- maxSurge / maxUnavailable ---------------------------------------- */

static int parse_percent(const char *s, long *pct)
{
	size_t n = strlen(s);
	if (n < 2 || s[n - 1] != '%' || strspn(s, "0123456789") != n - 1 || n > 12)
		return -EINVAL;
	*pct = strtol(s, NULL, 10);
	return 0;
}

int rollout_int_or_percent(json_t *v, long total, bool round_up, long *out, struct kerr *err)
{
	if (!v || json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			return kerr_set(err, EINVAL, "invalid value %lld: must be >= 0",
			                (long long)i);
		*out = (long)i;
		return 0;
	}
	long pct;
	if (!json_is_string(v) || parse_percent(json_string_value(v), &pct) < 0) {
		_cleanup_free_ char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		return kerr_set(err, EINVAL,
		                "invalid value %s: must be an integer or a percentage (\"25%%\")",
		                s);
	}
	long prod = pct * total;
	*out = round_up ? (prod + 99) / 100 : prod / 100;
	return 0;
}

int rollout_limits(long replicas, json_t *max_surge, json_t *max_unavailable, long *surge,
                   long *unavailable, struct kerr *err)
{
	_cleanup_json_ json_t *dflt = json_string("25%");
	long s, u;
	if (rollout_int_or_percent(max_surge ? max_surge : dflt, replicas, true, &s, err) < 0)
		return kerr_prefix(err, "maxSurge");
	if (rollout_int_or_percent(max_unavailable ? max_unavailable : dflt, replicas, false, &u,
	                           err) < 0)
		return kerr_prefix(err, "maxUnavailable");
	if (u > replicas)
		u = replicas;
	if (s == 0 && u == 0) {
		long s_raw, u_raw;
		/* resolved against 100 replicas, a non-zero setting is non-zero */
		rollout_int_or_percent(max_surge ? max_surge : dflt, 100, true, &s_raw, NULL);
		rollout_int_or_percent(max_unavailable ? max_unavailable : dflt, 100, true, &u_raw,
		                       NULL);
		if (s_raw == 0 && u_raw == 0)
			return kerr_set(err, EINVAL,
			                "maxSurge and maxUnavailable may not both be 0");
		u = 1; /* rounding made both 0: let one Task go at a time */
	}
	*surge = s;
	*unavailable = u;
	return 0;
}

/* ---- one step ---------------------------------------------------------- */

static void plan_scale_down_old(const struct rollout_counts *c, long unavailable,
                                struct rollout_step *out)
{
	long old_unready = c->old_total - c->old_ready;
	long min_available = c->replicas - unavailable;
	long new_unready = c->new_total - c->new_ready;
	long total = c->new_total + c->old_total;
	long max_down = total - min_available - new_unready;
	if (max_down <= 0)
		return;
	out->delete_old_unready = lmin(old_unready, max_down);
	long available = c->new_ready + c->old_ready;
	out->delete_old_ready = lmax(0, lmin(c->old_ready, available - min_available));
}

void rollout_plan(const struct rollout_counts *c, long surge, long unavailable,
                  struct rollout_step *out)
{
	memset(out, 0, sizeof(*out));
	long total = c->new_total + c->old_total;
	if (c->new_total > c->replicas) {
		out->delete_new = c->new_total - c->replicas;
	} else if (c->new_total < c->replicas) {
		long room = c->replicas + surge - total;
		out->create = lmax(0, lmin(room, c->replicas - c->new_total));
	}
	if (c->old_total > 0)
		plan_scale_down_old(c, unavailable, out);
}

void rollout_plan_recreate(const struct rollout_counts *c, struct rollout_step *out)
{
	memset(out, 0, sizeof(*out));
	if (c->old_total > 0) {
		out->delete_old_unready = c->old_total - c->old_ready;
		out->delete_old_ready = c->old_ready;
		return;
	}
	if (c->new_total > c->replicas)
		out->delete_new = c->new_total - c->replicas;
	else
		out->create = c->replicas - c->new_total;
}

bool rollout_complete(const struct rollout_counts *c)
{
	return c->old_total == 0 && c->new_total == c->replicas && c->new_ready == c->replicas;
}

/* ---- scale-down order --------------------------------------------------- */

int rollout_phase_rank(const char *phase)
{
	if (streq(phase, "Scheduled"))
		return 1;
	if (streq(phase, "Running"))
		return 2;
	return 0;
}

int rollout_victim_cmp(const void *pa, const void *pb)
{
	const struct rollout_victim *a = pa, *b = pb;
	if (a->scheduled != b->scheduled)
		return a->scheduled ? 1 : -1;
	if (a->phase_rank != b->phase_rank)
		return a->phase_rank < b->phase_rank ? -1 : 1;
	if (a->ready != b->ready)
		return a->ready ? 1 : -1;
	if (a->created != b->created)
		return a->created > b->created ? -1 : 1;
	return -strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

/* ---- names --------------------------------------------------------------- */

static void encode(uint64_t v, char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = alphabet[v % ALPHABET_LEN];
		v /= ALPHABET_LEN;
	}
	out[n] = '\0';
}

void rollout_template_hash(json_t *tmpl, char *out)
{
	_cleanup_free_ char *s = json_dumps(tmpl, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL; /* FNV prime */
	}
	encode(h, out, ROLLOUT_HASH_LEN);
}

void rollout_name_suffix(uint64_t rnd, char *out)
{
	encode(rnd, out, ROLLOUT_SUFFIX_LEN);
}

/* ---- revision history --------------------------------------------------- */

static long entry_revision(json_t *e)
{
	return (long)json_integer_value(json_object_get(e, "revision"));
}

static int cmp_entries(const void *a, const void *b)
{
	long ra = entry_revision(*(json_t *const *)a), rb = entry_revision(*(json_t *const *)b);
	return ra < rb ? -1 : ra > rb;
}

static void sort_history(json_t *h)
{
	size_t n = json_array_size(h);
	if (n < 2)
		return;
	json_t **v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(h, i));
	qsort(v, n, sizeof(*v), cmp_entries);
	json_array_clear(h);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(h, v[i]);
	free(v);
}

static bool entry_valid(json_t *e)
{
	json_t *r = json_object_get(e, "revision");
	return json_is_object(e) && json_is_integer(r) && json_integer_value(r) > 0 &&
	       json_is_string(json_object_get(e, "hash")) &&
	       json_is_object(json_object_get(e, "template"));
}

json_t *rollout_history_parse(const char *text)
{
	json_t *out = json_array();
	if (!text || !*text)
		return out;
	_cleanup_json_ json_t *in = json_loads(text, 0, NULL);
	size_t i;
	json_t *e;
	json_array_foreach(in, i, e)
	{
		if (entry_valid(e))
			json_array_append(out, e);
	}
	sort_history(out);
	return out;
}

static long max_revision(json_t *history)
{
	size_t n = json_array_size(history);
	return n ? entry_revision(json_array_get(history, n - 1)) : 0;
}

long rollout_history_record(json_t *history, const char *hash, json_t *tmpl, long limit,
                            bool *changed)
{
	bool ch = false;
	long max = max_revision(history), rev = 0;
	json_t *e = NULL;
	for (size_t i = 0; i < json_array_size(history) && !e; i++)
		if (streq(json_string_value(json_object_get(json_array_get(history, i), "hash")),
		          hash))
			e = json_array_get(history, i);
	if (e && entry_revision(e) == max) {
		rev = max;
	} else if (e) {
		rev = max + 1;
		json_object_set_new(e, "revision", json_integer(rev));
		json_object_set(e, "template", tmpl); /* the same hash: the same template */
		sort_history(history);
		ch = true;
	} else {
		rev = max + 1;
		json_t *ne = json_pack("{s:I,s:s,s:O}", "revision", (json_int_t)rev, "hash", hash,
		                       "template", tmpl);
		json_array_append_new(history, ne);
		ch = true;
	}
	while ((long)json_array_size(history) > lmax(limit, 0) + 1) {
		json_array_remove(history, 0);
		ch = true;
	}
	if (changed)
		*changed = ch;
	return rev;
}

json_t *rollout_history_find(json_t *history, long revision)
{
	size_t n = json_array_size(history);
	if (revision == 0)
		return n >= 2 ? json_array_get(history, n - 2) : NULL;
	size_t i;
	json_t *e;
	json_array_foreach(history, i, e)
	{
		if (entry_revision(e) == revision)
			return e;
	}
	return NULL;
}
