/*
 * applyset — apply a manifest set in order and prune what it no longer
 * defines, through the client library only (like every other loop, never
 * the store).
 *
 * Applying is server-side apply of each document, in the order the caller
 * gives (manifest_set_apply_order: Namespaces first). The label naming the
 * set is put into the documents before they are validated, so the label is
 * part of what the manifest's field manager owns, and an unchanged set
 * re-applied is still a no-op on the server (no revision, no event).
 *
 * Ownership and prune share one list per kind, taken before anything is
 * applied, with the selector "keel/apply-set" (the label exists, whatever
 * its value): the objects of other sets are what must not be taken over,
 * those of this set are what a prune may delete. One list per kind costs
 * less than one GET per document, and an idle sync pass already paid for
 * the lists. An object created since the list is one this pass applies
 * (so kept), and one deleted since counts as pruned. Objects without the
 * label are not listed: applying them adopts them, as kubectl's ApplySet
 * does.
 *
 * Pruning plans with prune.c (pure), guards Namespaces by listing what
 * they hold, and deletes in the plan's order with Background propagation,
 * so that the gc controller removes what a pruned Deployment owned.
 */
#include "sync/applyset.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/meta.h"
#include "api/status.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/manifest.h"

#define BASE_MAX 40

int applyset_name_check(const char *name, struct kerr *err)
{
	if (!name || !*name || !api_is_label_value(name))
		return kerr_set(err, EINVAL,
		                "invalid apply set name \"%s\": it must be a label value, 1 to 63 "
		                "characters of letters, digits, '-', '_' and '.', beginning and "
		                "ending with a letter or digit",
		                name ? name : "");
	return 0;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* BASE from the last component of abs: lower case, [a-z0-9._-], no
 * manifest suffix, alphanumeric at both ends; "set" when nothing is left. */
static char *base_of(const char *abs)
{
	const char *slash = strrchr(abs, '/');
	_cleanup_free_ char *b = xstrdup(slash && slash[1] ? slash + 1 : "set");
	static const char *const suffixes[] = {".yaml", ".yml", ".json"};
	size_t n = strlen(b);
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t sl = strlen(suffixes[i]);
		if (n > sl && strcmp(b + n - sl, suffixes[i]) == 0) {
			b[n - sl] = '\0';
			break;
		}
	}
	char out[BASE_MAX + 1];
	size_t k = 0;
	for (const char *p = b; *p && k < BASE_MAX; p++) {
		unsigned char ch = (unsigned char)tolower((unsigned char)*p);
		out[k++] = (char)(isalnum(ch) || ch == '.' || ch == '_' || ch == '-' ? ch : '-');
	}
	out[k] = '\0';
	size_t start = 0;
	while (out[start] && !isalnum((unsigned char)out[start]))
		start++;
	while (k > start && !isalnum((unsigned char)out[k - 1]))
		out[--k] = '\0';
	return xstrdup(out[start] ? out + start : "set");
}

/* The current directory as the shell shows it: $PWD when it names the
 * same directory as ".", so that `cd repo/current && keel sync .` names
 * the link, not its target; getcwd() else. Owned, or NULL. */
static char *logical_cwd(void)
{
	const char *pwd = getenv("PWD");
	struct stat a, b;
	if (pwd && pwd[0] == '/' && stat(pwd, &a) == 0 && stat(".", &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return xstrdup(pwd);
	char buf[PATH_MAX];
	return getcwd(buf, sizeof buf) ? xstrdup(buf) : NULL;
}

/* path made absolute by name: "." and empty components dropped, ".."
 * taking the one before it away, symlinks left as they are (the last
 * component of a git-sync root is the link, whatever it points to). */
static char *abs_path_lexical(const char *path)
{
	_cleanup_free_ char *cwd = path[0] == '/' ? NULL : logical_cwd();
	if (path[0] != '/' && !cwd)
		return NULL;
	_cleanup_free_ char *full = cwd ? xasprintf("%s/%s", cwd, path) : xstrdup(path);
	char *out = xmalloc(strlen(full) + 2);
	size_t n = 0;
	for (char *save = NULL, *c = strtok_r(full, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (streq(c, "."))
			continue;
		if (streq(c, "..")) {
			while (n > 0 && out[--n] != '/')
				;
			continue;
		}
		n += (size_t)sprintf(out + n, "/%s", c);
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return out;
}

char *applyset_default_name(const char *path, struct kerr *err)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			kerr_set(err, ENOENT, "the path \"%s\" does not exist", path);
		else
			kerr_set(err, errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	_cleanup_free_ char *abs = abs_path_lexical(path);
	if (!abs) {
		kerr_set(err, errno ? errno : ENOENT, "%s: cannot find the current directory: %s",
		         path, strerror(errno ? errno : ENOENT));
		return NULL;
	}
	_cleanup_free_ char *base = base_of(abs);
	return xasprintf("%s-%08x", base, (unsigned)(fnv1a(abs) >> 32));
}

struct prune_key applyset_doc_key(const struct manifest_doc *d)
{
	return (struct prune_key){.kind = d->kind,
	                          .ns = d->kind->namespaced ? manifest_doc_namespace(d, NULL) : "",
	                          .name = api_obj_name(d->obj)};
}

size_t applyset_label_docs(struct manifest_set *m, const char *set)
{
	size_t errors = 0;
	for (size_t i = 0; i < m->n_docs; i++) {
		struct manifest_doc *d = &m->docs[i];
		json_t *meta = api_obj_meta(d->obj);
		if (!d->kind || !meta)
			continue;
		json_t *labels = json_object_get(meta, "labels");
		if (json_is_null(labels) || !labels) {
			labels = json_object();
			json_object_set_new(meta, "labels", labels);
		}
		if (!json_is_object(labels))
			continue; /* validation reports the type */
		json_t *have = json_object_get(labels, APPLYSET_LABEL);
		if (have && !streq(json_string_value(have), set)) {
			const char *hs = json_string_value(have);
			manifest_doc_error(
			    m, d, "metadata.labels[" APPLYSET_LABEL "]",
			    "metadata.labels[" APPLYSET_LABEL "]: the object is in apply "
			    "set \"%s\" here, but is applied as part of \"%s\"; remove "
			    "the label (keel sets it) or use --set %s",
			    hs ? hs : "?", set, hs ? hs : "NAME");
			d->invalid = true;
			errors++;
			continue;
		}
		json_object_set_new(labels, APPLYSET_LABEL, json_string(set));
	}
	return errors;
}

bool applyset_error_is_fatal(const struct kerr *err)
{
	int c = err ? err->code : 0;
	return c == ECONNREFUSED || c == EHOSTUNREACH || c == ETIMEDOUT || c == EACCES ||
	       c == EPROTO;
}

/* Fills the failure fields of ev from err and the client's last answer. */
static void fill_failure(struct applyset_event *ev, struct client *c, const struct kerr *err)
{
	ev->err = err;
	ev->http_code = client_last_http_code(c);
	ev->reason = json_string_value(json_object_get(client_last_status(c), "reason"));
	if (ev->http_code >= 400 && !ev->reason)
		api_http_status(err->code, &ev->reason);
	if (ev->http_code < 400)
		ev->reason = NULL;
}

/* ---- what the cluster holds of apply sets ---- */

/* Appends the items of every kind's list (q applies; ns NULL: all
 * namespaces) to out, each with its "kind". */
static int list_kinds(struct client *c, const char *ns, const struct client_query *q,
                      bool namespaced_only, json_t *out, struct kerr *err)
{
	for (size_t i = 0; i < api_kind_count(); i++) {
		const struct api_kind *k = api_kind_at(i);
		if (namespaced_only && (!k->namespaced || streq(k->kind, "Event")))
			continue;
		_cleanup_json_ json_t *list = NULL;
		int r = client_list_all(c, k, ns, q, &list, err);
		if (r < 0)
			return kerr_prefix(err, "listing %s", k->plural);
		size_t j;
		json_t *it;
		json_array_foreach(json_object_get(list, "items"), j, it)
		{
			if (!json_is_object(it))
				continue;
			if (!json_object_get(it, "kind"))
				json_object_set_new(it, "kind", json_string(k->kind));
			json_array_append(out, it);
		}
	}
	return 0;
}

static char *live_key(const struct api_kind *k, const char *ns, const char *name)
{
	return xasprintf("%s\n%s\n%s", k->kind, k->namespaced && ns ? ns : "", name);
}

static const char *set_label_of(json_t *obj)
{
	return json_string_value(json_object_get(api_obj_labels(obj), APPLYSET_LABEL));
}

void applyset_live_init(struct applyset_live *out, json_t *objs)
{
	out->objs = objs;
	out->index = json_object();
	size_t i;
	json_t *obj;
	json_array_foreach(objs, i, obj)
	{
		const struct api_kind *k = api_kind_by_kind(api_obj_kind(obj));
		const char *name = api_obj_name(obj);
		if (!k || !name)
			continue;
		_cleanup_free_ char *key = live_key(k, api_obj_namespace(obj), name);
		json_object_set(out->index, key, obj);
	}
}

void applyset_live_free(struct applyset_live *l)
{
	if (!l)
		return;
	json_decref(l->index);
	json_decref(l->objs);
	l->index = l->objs = NULL;
}

const char *applyset_live_owner(const struct applyset_live *l, const struct prune_key *key)
{
	if (!l || !l->index || !key->kind || !key->name)
		return NULL;
	_cleanup_free_ char *k = live_key(key->kind, key->ns, key->name);
	return set_label_of(json_object_get(l->index, k));
}

json_t *applyset_live_members(const struct applyset_live *l, const char *set)
{
	json_t *out = json_array();
	size_t i;
	json_t *obj;
	json_array_foreach(l ? l->objs : NULL, i, obj)
	{
		if (streq(set_label_of(obj), set))
			json_array_append(out, obj);
	}
	return out;
}

int applyset_check_owner(const struct applyset_live *l, const struct prune_key *key,
                         const char *set, bool overwrite, const char **other, struct kerr *err)
{
	const char *owner = applyset_live_owner(l, key);
	if (!owner || streq(owner, set))
		return 0;
	if (other)
		*other = owner;
	if (overwrite)
		return 1;
	return kerr_set(err, EEXIST,
	                "%s/%s belongs to apply set \"%s\", not \"%s\": delete it from \"%s\" "
	                "first, or give --overwrite-set to move it to \"%s\"",
	                key->kind->singular, key->name, owner, set, owner, set);
}

int applyset_live_list(struct client *c, struct applyset_live *out, struct kerr *err)
{
	struct client_query q = {.label_selector = APPLYSET_LABEL, .limit = 500};
	_cleanup_json_ json_t *objs = json_array();
	int r = list_kinds(c, NULL, &q, false, objs, err);
	if (r < 0)
		return r;
	applyset_live_init(out, TAKE_PTR(objs));
	return 0;
}

/* ---- apply ---- */

/* Namespaces a dry run would create (borrowed names). */
struct new_namespaces {
	const char **v;
	size_t n;
};

static bool dry_run_new_namespace(const struct new_namespaces *nn, const char *ns,
                                  const struct kerr *err)
{
	if (!ns || err->code != ENOENT)
		return false;
	_cleanup_free_ char *want = xasprintf("namespaces \"%s\" not found", ns);
	if (!streq(err->msg, want))
		return false;
	for (size_t i = 0; i < nn->n; i++)
		if (streq(nn->v[i], ns))
			return true;
	return false;
}

static void count_result(struct applyset_counts *counts, enum client_apply_result res)
{
	if (res == CLIENT_APPLY_CREATED)
		counts->created++;
	else if (res == CLIENT_APPLY_UNCHANGED)
		counts->unchanged++;
	else
		counts->configured++;
}

/* Applies one document; returns 0 or the -errno of a failure (reported). */
static int apply_one(struct client *c, const struct manifest_doc *d, const struct applyset_opts *o,
                     struct new_namespaces *nn, applyset_report_fn fn, void *ud,
                     struct applyset_counts *counts)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct client_query q = {.dry_run = o->dry_run, .field_manager = o->field_manager};
	enum client_apply_result res = CLIENT_APPLY_UNKNOWN;
	const char *ns = d->kind->namespaced ? api_obj_namespace(d->obj) : NULL;
	struct applyset_event ev = {.kind = d->kind,
	                            .ns = ns,
	                            .name = api_obj_name(d->obj),
	                            .doc = d,
	                            .dry_run = o->dry_run};
	if (o->set && o->live) {
		struct prune_key key = applyset_doc_key(d);
		int own = applyset_check_owner(o->live, &key, o->set, o->overwrite_set,
		                               &ev.other_set, &err);
		if (own < 0) {
			ev.type = APPLYSET_APPLY_FAILED;
			ev.err = &err;
			counts->failed++;
			counts->conflicts++;
			fn(ud, &ev);
			return own;
		}
	}
	int r = client_apply(c, d->kind, ns, d->obj, &q, NULL, &res, &err);
	if (r < 0 && o->dry_run && dry_run_new_namespace(nn, ns, &err)) {
		r = 0;
		res = CLIENT_APPLY_CREATED;
		ev.unchecked = true;
	}
	if (r < 0) {
		ev.type = APPLYSET_APPLY_FAILED;
		ev.other_set = NULL; /* sent, and refused for another reason */
		fill_failure(&ev, c, &err);
		counts->failed++;
		if (applyset_error_is_fatal(&err) || err.code == ENOSPC)
			counts->fatal = true;
		fn(ud, &ev);
		return r;
	}
	if (res == CLIENT_APPLY_UNKNOWN)
		res = CLIENT_APPLY_CONFIGURED;
	if (o->dry_run && res == CLIENT_APPLY_CREATED && streq(d->kind->kind, "Namespace")) {
		nn->v = xrealloc(nn->v, (nn->n + 1) * sizeof(*nn->v));
		nn->v[nn->n++] = api_obj_name(d->obj);
	}
	ev.type = APPLYSET_APPLIED;
	ev.result = res;
	count_result(counts, res);
	counts->moved += ev.other_set != NULL;
	fn(ud, &ev);
	return 0;
}

void applyset_apply(struct client *c, struct manifest_set *m, const size_t *order, size_t n,
                    const struct applyset_opts *o, applyset_report_fn fn, void *ud,
                    struct applyset_counts *counts)
{
	struct new_namespaces nn = {0};
	for (size_t i = 0; i < n && !counts->fatal; i++) {
		const struct manifest_doc *d = &m->docs[order[i]];
		if (!d->kind || d->invalid)
			continue;
		apply_one(c, d, o, &nn, fn, ud, counts);
	}
	free(nn.v);
}

/* ---- prune ---- */

int applyset_plan_prune(struct client *c, const struct applyset_live *live, const char *set,
                        const struct prune_key *keep, size_t n_keep, struct prune_plan *plan,
                        struct kerr *err)
{
	/* the members stay alive in live->objs when this array goes */
	_cleanup_json_ json_t *objs = applyset_live_members(live, set);
	int r;
	struct prune_plan p = {0};
	prune_plan_build(&p, objs, keep, n_keep);
	size_t n_ns = 0;
	_cleanup_free_ const char **nss = prune_plan_namespaces(&p, &n_ns);
	_cleanup_json_ json_t *contents = json_array();
	struct client_query all = {.limit = 500};
	for (size_t i = 0; i < n_ns; i++) {
		if ((r = list_kinds(c, nss[i], &all, true, contents, err)) < 0) {
			prune_plan_free(&p);
			return r;
		}
	}
	prune_plan_guard_namespaces(&p, contents, set);
	*plan = p;
	return 0;
}

void applyset_prune(struct client *c, const struct prune_plan *plan, const struct applyset_opts *o,
                    applyset_report_fn fn, void *ud, struct applyset_counts *counts)
{
	for (size_t i = 0; i < plan->n && !counts->fatal; i++) {
		const struct prune_item *it = &plan->items[i];
		struct applyset_event ev = {
		    .kind = it->kind, .ns = it->ns, .name = it->name, .dry_run = o->dry_run};
		if (it->action == PRUNE_KEEP) {
			ev.type = APPLYSET_PRUNE_KEPT;
			ev.reason = it->reason;
			counts->kept++;
			fn(ud, &ev);
			continue;
		}
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		struct client_query q = {.dry_run = o->dry_run, .propagation = "Background"};
		int r = client_delete(c, it->kind, it->ns, it->name, &q, NULL, &err);
		if (r < 0 && r != -ENOENT) {
			ev.type = APPLYSET_PRUNE_FAILED;
			fill_failure(&ev, c, &err);
			counts->prune_failed++;
			counts->fatal = applyset_error_is_fatal(&err);
			fn(ud, &ev);
			continue;
		}
		ev.type = APPLYSET_PRUNED;
		counts->pruned++;
		fn(ud, &ev);
	}
}
