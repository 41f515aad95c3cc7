/*
 * sync — the GitOps loop: re-read a manifest tree, apply it as one apply
 * set, prune what left it, after every change and every interval.
 *
 * Every pass is a full pass (the whole tree re-read and every object
 * applied): the watch says only that something changed, and server-side
 * apply of an unchanged object writes nothing, so a full pass costs one
 * request per object and no store write. That is also what makes drift
 * correction free: the periodic pass is the same code.
 *
 * What a broken file defined is remembered from its last good parse (per
 * path, in memory; see sync.h). Memory is per process on purpose: the
 * cluster could record each object's source file (an annotation), but
 * then renaming a file would rewrite every object in it; a fresh start
 * with a broken file simply skips the prune once, and says why.
 */
#include "sync/sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "api/meta.h"
#include "client/client.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "manifests/manifest.h"
#include "sync/applyset.h"
#include "sync/watch.h"

#define DEFAULT_INTERVAL_MS 60000
#define DEFAULT_DEBOUNCE_MS 200

/* What a file defined the last time it parsed and validated. */
struct mem_key {
	const struct api_kind *kind;
	char *ns, *name;
};
struct mem_file {
	char *path;
	struct mem_key *keys;
	size_t n;
};

struct strs {
	char **v;
	size_t n;
};

struct sync {
	struct client *c;
	char *dir, *set, *field_manager;
	int64_t interval_ms, debounce_ms;
	bool allow_empty;
	bool overwrite_set;
	sync_log_fn log;
	void *log_ud;
	struct mem_file *mem;
	size_t n_mem;
	struct strs prev_problems, problems; /* logged last pass / this pass */
	pthread_mutex_t lock;                /* guards stats */
	struct sync_stats stats;
};

const char *sync_trigger_name(enum sync_trigger t)
{
	switch (t) {
	case SYNC_TRIGGER_START:
		return "start";
	case SYNC_TRIGGER_CHANGE:
		return "change";
	case SYNC_TRIGGER_INTERVAL:
		return "interval";
	}
	return "?";
}

static void strs_push(struct strs *s, char *v)
{
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = v;
}

static bool strs_has(const struct strs *s, const char *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i], v))
			return true;
	return false;
}

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void logf_(struct sync *s, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(struct sync *s, enum log_level lvl, const char *fmt, ...)
{
	if (!s->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *line = xvasprintf(fmt, ap);
	va_end(ap);
	s->log(s->log_ud, lvl, line);
}

/* A problem line: logged unless the previous pass logged the same. */
static void problem(struct sync *s, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct sync *s, enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *line = xvasprintf(fmt, ap);
	va_end(ap);
	if (!strs_has(&s->prev_problems, line) && !strs_has(&s->problems, line) && s->log)
		s->log(s->log_ud, lvl, line);
	strs_push(&s->problems, line);
}

/* ---- lifecycle ---- */

int sync_new(struct client *c, const struct sync_opts *o, struct sync **out, struct kerr *err)
{
	_cleanup_free_ char *set = NULL;
	if (o->set) {
		if (applyset_name_check(o->set, err) < 0)
			return -EINVAL;
		set = xstrdup(o->set);
	} else if (!(set = applyset_default_name(o->dir, err))) {
		return -err->code;
	}
	struct sync *s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->dir = xstrdup(o->dir);
	s->set = TAKE_PTR(set);
	s->field_manager = o->field_manager ? xstrdup(o->field_manager) : NULL;
	s->interval_ms = o->interval_ms > 0 ? o->interval_ms : DEFAULT_INTERVAL_MS;
	s->debounce_ms = o->debounce_ms >= 0 ? o->debounce_ms : DEFAULT_DEBOUNCE_MS;
	s->allow_empty = o->allow_empty;
	s->overwrite_set = o->overwrite_set;
	s->log = o->log;
	s->log_ud = o->log_ud;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

static void mem_file_clear(struct mem_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->keys[i].ns);
		free(f->keys[i].name);
	}
	free(f->keys);
	free(f->path);
}

void sync_free(struct sync *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_mem; i++)
		mem_file_clear(&s->mem[i]);
	free(s->mem);
	strs_free(&s->prev_problems);
	strs_free(&s->problems);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s->set);
	free(s->field_manager);
	free(s);
}

const char *sync_set_name(const struct sync *s)
{
	return s->set;
}

void sync_stats_get(struct sync *s, struct sync_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

void sync_metrics_render(struct sync *s, struct sbuf *out)
{
	struct sync_stats st;
	sync_stats_get(s, &st);
	const char *set = sync_set_name(s);
	static const struct {
		const char *name, *help;
		size_t off;
	} counters[] = {
	    {"keel_sync_passes_total", "Sync passes run.", offsetof(struct sync_stats, passes)},
	    {"keel_sync_failed_passes_total", "Sync passes with errors.",
	     offsetof(struct sync_stats, failed_passes)},
	    {"keel_sync_created_total", "Objects created by sync.",
	     offsetof(struct sync_stats, created)},
	    {"keel_sync_configured_total", "Objects changed by sync.",
	     offsetof(struct sync_stats, configured)},
	    {"keel_sync_unchanged_total", "Objects applied unchanged by sync.",
	     offsetof(struct sync_stats, unchanged)},
	    {"keel_sync_pruned_total", "Objects pruned by sync.", offsetof(struct sync_stats, pruned)},
	    {"keel_sync_errors_total", "Errors (broken files, failed applies or prunes).",
	     offsetof(struct sync_stats, errors)},
	    {"keel_sync_prunes_skipped_total", "Passes whose prune was skipped.",
	     offsetof(struct sync_stats, prunes_skipped)},
	    {"keel_sync_watch_overflows_total", "inotify queue overflows (full rescans).",
	     offsetof(struct sync_stats, watch_overflows)},
	};
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		uint64_t v = *(const uint64_t *)((const char *)&st + counters[i].off);
		sbuf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s{set=\"%s\"} %llu\n",
		            counters[i].name, counters[i].help, counters[i].name, counters[i].name, set,
		            (unsigned long long)v);
	}
	sbuf_printf(out,
	            "# HELP keel_sync_last_pass_timestamp_seconds End of the last sync pass.\n"
	            "# TYPE keel_sync_last_pass_timestamp_seconds gauge\n"
	            "keel_sync_last_pass_timestamp_seconds{set=\"%s\"} %lld\n",
	            set, (long long)st.last_pass_unix);
}

/* ---- one pass ---- */

struct pass {
	struct sync *s;
	struct manifest_set m;
	struct sync_pass_result *r;
	struct prune_key *keep; /* borrowed from m and s->mem */
	size_t n_keep;
	bool load_failed; /* the tree could not be read: never prune */
	char *skip_prune; /* why the prune does not run; NULL: it does */
};

static const struct mem_file *mem_find(const struct sync *s, const char *path)
{
	for (size_t i = 0; i < s->n_mem; i++)
		if (streq(s->mem[i].path, path))
			return &s->mem[i];
	return NULL;
}

static void skip_prune(struct pass *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip_prune(struct pass *p, const char *fmt, ...)
{
	if (p->skip_prune)
		return; /* the first reason is the one to fix first */
	va_list ap;
	va_start(ap, fmt);
	p->skip_prune = xvasprintf(fmt, ap);
	va_end(ap);
}

static void keep_push(struct pass *p, struct prune_key k)
{
	p->keep = xrealloc(p->keep, (p->n_keep + 1) * sizeof(*p->keep));
	p->keep[p->n_keep++] = k;
}

/* Did d's file define d's object in its last good version? Then a copy of
 * it in another file is the broken one: a stray copy must never take the
 * live object over. */
static bool owned_before(void *ud, const struct manifest_doc *d)
{
	const struct mem_file *f = mem_find(ud, d->file);
	struct prune_key k = applyset_doc_key(d);
	for (size_t i = 0; f && i < f->n; i++)
		if (f->keys[i].kind == k.kind && streq(f->keys[i].ns, k.ns) &&
		    streq(f->keys[i].name, k.name))
			return true;
	return false;
}

/* Reads, labels, validates; logs the diagnostics. */
static void load(struct pass *p)
{
	struct sync *s = p->s;
	struct manifest_load_opts o = {.recursive = true,
	                               .check_envelope = true,
	                               .regular_only = true,
	                               .accept = watch_relevant_name,
	                               .accept_desc = "*.yaml or *.yml"};
	const char *paths[] = {s->dir};
	manifest_set_load(&p->m, paths, 1, &o);
	applyset_label_docs(&p->m, s->set);
	manifest_set_validate(&p->m, NULL);
	manifest_set_check_duplicates_owned(&p->m, NULL, owned_before, s);
	for (size_t i = 0; i < p->m.n_diags; i++) {
		const struct manifest_diag *d = &p->m.diags[i];
		_cleanup_free_ char *line = manifest_diag_format_bare(d); /* the level says which */
		problem(s, d->severity == MANIFEST_ERROR ? LOG_ERROR : LOG_WARN, "%s", line);
		if (d->severity == MANIFEST_ERROR && d->file_i == MANIFEST_NO_FILE)
			p->load_failed = true;
	}
	p->r->errors += p->m.n_errors;
	p->r->warnings += p->m.n_warnings;
	p->r->files = p->m.n_files;
}

/* The keys to keep out of the prune: what good files define now, and what
 * broken files defined when last good. Documents of broken files are
 * marked invalid, so that they are not applied. */
static void collect_keys(struct pass *p)
{
	struct manifest_set *m = &p->m;
	for (size_t i = 0; i < m->n_docs; i++) {
		struct manifest_doc *d = &m->docs[i];
		if (m->files[d->file_i].n_errors > 0)
			d->invalid = true;
		else if (d->kind)
			keep_push(p, applyset_doc_key(d));
	}
	for (size_t i = 0; i < m->n_files; i++) {
		bool skipped = m->files[i].skipped;
		if (m->files[i].n_errors == 0 && !skipped)
			continue;
		p->r->broken_files += !skipped;
		const struct mem_file *f = mem_find(p->s, m->files[i].path);
		if (!f && skipped)
			continue; /* a dangling link held nothing we know of */
		if (!f) {
			skip_prune(
			    p,
			    "%s has errors and no good version of it has been seen since keel "
			    "sync started, so what it defines is unknown",
			    m->files[i].path);
			continue;
		}
		for (size_t k = 0; k < f->n; k++)
			keep_push(
			    p, (struct prune_key){f->keys[k].kind, f->keys[k].ns, f->keys[k].name});
	}
}

/* The memory after this pass: good files as they are now, broken files as
 * they were; files gone are forgotten. */
static void remember(struct pass *p)
{
	struct sync *s = p->s;
	struct manifest_set *m = &p->m;
	struct mem_file *next = xcalloc(m->n_files + 1, sizeof(*next));
	size_t n = 0;
	for (size_t i = 0; i < m->n_files; i++) {
		struct mem_file *f = &next[n++];
		f->path = xstrdup(m->files[i].path);
		const struct mem_file *old = mem_find(s, f->path);
		if (m->files[i].n_errors > 0 || m->files[i].skipped) {
			if (!old) {
				n--;
				free(f->path);
				continue;
			}
			f->keys = xcalloc(old->n + 1, sizeof(*f->keys));
			for (size_t k = 0; k < old->n; k++)
				f->keys[f->n++] =
				    (struct mem_key){old->keys[k].kind, xstrdup(old->keys[k].ns),
				                     xstrdup(old->keys[k].name)};
			continue;
		}
		for (size_t d = 0; d < m->n_docs; d++) {
			if (m->docs[d].file_i != i || !m->docs[d].kind)
				continue;
			struct prune_key k = applyset_doc_key(&m->docs[d]);
			f->keys = xrealloc(f->keys, (f->n + 1) * sizeof(*f->keys));
			f->keys[f->n++] = (struct mem_key){k.kind, xstrdup(k.ns), xstrdup(k.name)};
		}
	}
	for (size_t i = 0; i < s->n_mem; i++)
		mem_file_clear(&s->mem[i]);
	free(s->mem);
	s->mem = next;
	s->n_mem = n;
}

static char *obj_ref(const struct api_kind *k, const char *ns, const char *name)
{
	return k->namespaced && ns ? xasprintf("%s/%s/%s", k->singular, ns, name)
	                           : xasprintf("%s/%s", k->singular, name);
}

static char *failure_text(const struct applyset_event *ev)
{
	if (ev->http_code >= 400)
		return xasprintf("Error from server (%s): %s", ev->reason ? ev->reason : "Unknown",
		                 kerr_msg(ev->err));
	return xstrdup(kerr_msg(ev->err)); /* the log line's level already says "error" */
}

static void report_causes(struct sync *s, const struct manifest_doc *d, const struct kerr *err)
{
	size_t i;
	json_t *c;
	json_array_foreach(err->causes, i, c)
	{
		const char *field = json_string_value(json_object_get(c, "field"));
		const char *msg = json_string_value(json_object_get(c, "message"));
		_cleanup_free_ char *where = manifest_doc_where(d, field);
		if (field && *field && !strstartswith(msg, field))
			problem(s, LOG_ERROR, "%s: %s: %s", where, field, msg ? msg : "invalid");
		else
			problem(s, LOG_ERROR, "%s: %s", where, msg ? msg : "invalid");
	}
}

static void on_event(void *ud, const struct applyset_event *ev)
{
	struct pass *p = ud;
	struct sync *s = p->s;
	_cleanup_free_ char *ref = obj_ref(ev->kind, ev->ns, ev->name);
	switch (ev->type) {
	case APPLYSET_APPLIED:
		if (ev->other_set)
			logf_(s, LOG_INFO, "%s %s (moved from apply set \"%s\")", ref,
			      client_apply_result_name(ev->result), ev->other_set);
		else
			logf_(s, ev->result == CLIENT_APPLY_UNCHANGED ? LOG_DEBUG : LOG_INFO,
			      "%s %s", ref, client_apply_result_name(ev->result));
		break;
	case APPLYSET_APPLY_FAILED: {
		_cleanup_free_ char *where = manifest_doc_where(ev->doc, NULL);
		if (ev->other_set) { /* the message names the object and both sets */
			problem(s, LOG_ERROR, "%s: %s", where, kerr_msg(ev->err));
			break;
		}
		_cleanup_free_ char *why = failure_text(ev);
		problem(s, LOG_ERROR, "%s: %s: %s", where, ref, why);
		report_causes(s, ev->doc, ev->err);
		break;
	}
	case APPLYSET_PRUNED:
		logf_(s, LOG_INFO, "%s pruned", ref);
		break;
	case APPLYSET_PRUNE_FAILED: {
		_cleanup_free_ char *why = failure_text(ev);
		problem(s, LOG_ERROR, "%s: not pruned: %s", ref, why);
		break;
	}
	case APPLYSET_PRUNE_KEPT:
		problem(s, LOG_WARN, "%s not pruned: %s", ref, ev->reason);
		break;
	}
}

/* What the cluster holds of apply sets, listed before anything is
 * applied: the ownership check and the prune both need it. Without it
 * nothing is applied (an object of another set could be taken over) and
 * nothing pruned. Returns 0 or -1 (reported). */
static int list_live(struct pass *p, struct applyset_live *live)
{
	struct sync *s = p->s;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (applyset_live_list(s->c, live, &err) == 0)
		return 0;
	problem(s, LOG_ERROR,
	        "cannot list the objects of apply sets (label %s): %s; nothing applied",
	        APPLYSET_LABEL, kerr_msg(&err));
	p->r->errors++;
	skip_prune(p, "the apply sets could not be listed");
	return -1;
}

static void apply_and_prune(struct pass *p)
{
	struct sync *s = p->s;
	size_t n = 0;
	_cleanup_free_ size_t *order = manifest_set_apply_order(&p->m, &n);
	struct applyset_live live = {0};
	struct applyset_opts o = {.field_manager = s->field_manager,
	                          .set = s->set,
	                          .live = &live,
	                          .overwrite_set = s->overwrite_set};
	struct applyset_counts counts = {0};
	for (size_t i = 0; i < n; i++)
		p->r->objects += !p->m.docs[order[i]].invalid;
	if (list_live(p, &live) == 0)
		applyset_apply(s->c, &p->m, order, n, &o, on_event, p, &counts);
	if (counts.fatal)
		skip_prune(p, "the server cannot be reached or refused the request");
	else if (counts.failed > 0)
		skip_prune(p, "%zu object%s failed to apply", counts.failed,
		           counts.failed == 1 ? "" : "s");
	if (p->load_failed)
		skip_prune(p, "%s could not be read", s->dir);
	if (p->n_keep == 0 && !s->allow_empty && !p->skip_prune) {
		problem(s, LOG_ERROR,
		        "%s holds no objects; not pruning apply set \"%s\", which would delete all "
		        "of its objects (allow it with --allow-empty)",
		        s->dir, s->set);
		p->r->errors++;
		skip_prune(p, "no objects");
	}
	if (!p->skip_prune) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		struct prune_plan plan = {0};
		if (applyset_plan_prune(s->c, &live, s->set, p->keep, p->n_keep, &plan, &err) < 0) {
			problem(s, LOG_ERROR, "cannot prune apply set \"%s\": %s", s->set,
			        kerr_msg(&err));
			p->r->errors++;
			skip_prune(p, "the namespaces to prune could not be listed");
		} else {
			applyset_prune(s->c, &plan, &o, on_event, p, &counts);
			prune_plan_free(&plan);
		}
	}
	applyset_live_free(&live);
	p->r->created = counts.created;
	p->r->configured = counts.configured;
	p->r->unchanged = counts.unchanged;
	p->r->pruned = counts.pruned;
	p->r->errors += counts.failed + counts.prune_failed;
	p->r->warnings += counts.kept;
	p->r->pruned_skipped = p->skip_prune != NULL;
}

static void log_pass(struct sync *s, const struct pass *p, uint64_t n)
{
	const struct sync_pass_result *r = p->r;
	_cleanup_free_ char *broken =
	    r->broken_files ? xasprintf("; %zu broken file%s left as %s", r->broken_files,
	                                r->broken_files == 1 ? "" : "s",
	                                r->broken_files == 1 ? "it was" : "they were")
	                    : xstrdup("");
	_cleanup_free_ char *skipped =
	    p->skip_prune ? xasprintf("; prune skipped: %s", p->skip_prune) : xstrdup("");
	logf_(s, r->errors ? LOG_WARN : LOG_INFO,
	      "sync pass %llu (%s): %zu file%s, %zu object%s: %zu created, %zu configured, %zu "
	      "unchanged, %zu pruned, %zu error%s%s%s (%lld ms)",
	      (unsigned long long)n, sync_trigger_name(r->trigger), r->files,
	      r->files == 1 ? "" : "s", r->objects, r->objects == 1 ? "" : "s", r->created,
	      r->configured, r->unchanged, r->pruned, r->errors, r->errors == 1 ? "" : "s", broken,
	      skipped, (long long)r->duration_ms);
}

static void account(struct sync *s, const struct sync_pass_result *r, uint64_t *n)
{
	pthread_mutex_lock(&s->lock);
	struct sync_stats *st = &s->stats;
	*n = ++st->passes;
	st->failed_passes += r->errors > 0;
	st->created += r->created;
	st->configured += r->configured;
	st->unchanged += r->unchanged;
	st->pruned += r->pruned;
	st->errors += r->errors;
	st->prunes_skipped += r->pruned_skipped;
	st->last_pass_unix = time_now_unix();
	st->last = *r;
	pthread_mutex_unlock(&s->lock);
}

int sync_pass(struct sync *s, enum sync_trigger trigger, struct sync_pass_result *out)
{
	int64_t t0 = time_mono_ms();
	struct sync_pass_result r = {.trigger = trigger};
	struct pass p = {.s = s, .r = &r};
	load(&p);
	collect_keys(&p);
	apply_and_prune(&p);
	remember(&p);
	r.duration_ms = time_mono_ms() - t0;
	uint64_t n;
	account(s, &r, &n);
	log_pass(s, &p, n);
	strs_free(&s->prev_problems);
	s->prev_problems = s->problems;
	s->problems = (struct strs){0};
	free(p.skip_prune);
	free(p.keep);
	manifest_set_free(&p.m);
	if (out)
		*out = r;
	return r.errors > 0 ? 1 : 0;
}

/* ---- the loop ---- */

static struct sync_watch *watch_open(struct sync *s)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct sync_watch *w = sync_watch_open(s->dir, &err);
	if (!w)
		problem(s, LOG_ERROR, "not watching %s: %s; re-reading it every %lld ms", s->dir,
		        kerr_msg(&err), (long long)s->interval_ms);
	return w;
}

static void watch_account(struct sync *s, const struct sync_watch *w)
{
	if (!w)
		return;
	struct sync_watch_stats ws;
	sync_watch_stats(w, &ws);
	pthread_mutex_lock(&s->lock);
	s->stats.watch_overflows = ws.overflows;
	s->stats.watch_rescans = ws.rescans;
	pthread_mutex_unlock(&s->lock);
}

/* Sleeps up to ms, waking every 100 ms to look at *stop. */
static void nap(int64_t ms, const volatile int *stop)
{
	while (ms > 0 && !(stop && *stop)) {
		int64_t step = ms < 100 ? ms : 100;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* Waits for the next reason to pass; returns the trigger, or -1 when
 * stopped. The watch is reopened here when it had failed. */
static int wait_next(struct sync *s, struct sync_watch **w, int64_t next, const volatile int *stop)
{
	while (!(stop && *stop)) {
		int64_t left = next - time_mono_ms();
		if (left <= 0)
			return SYNC_TRIGGER_INTERVAL;
		if (!*w) {
			nap(left, stop);
			continue;
		}
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		int r = sync_watch_wait(*w, (int)(left > 0x7fffffff ? 0x7fffffff : left),
		                        (int)s->debounce_ms, stop, &err);
		watch_account(s, *w);
		if (r == 1)
			return SYNC_TRIGGER_CHANGE;
		if (r < 0) {
			problem(s, LOG_ERROR, "watching %s: %s", s->dir, kerr_msg(&err));
			if (err.code != ENOSPC && err.code != ENOMEM) {
				sync_watch_close(*w); /* reopened at the next pass */
				*w = NULL;
			}
			return SYNC_TRIGGER_CHANGE; /* something may have been missed */
		}
	}
	return -1;
}

int sync_run(struct sync *s, const volatile int *stop)
{
	logf_(s, LOG_INFO, "syncing %s as apply set \"%s\" (label %s=%s), full pass every %lld ms",
	      s->dir, s->set, APPLYSET_LABEL, s->set, (long long)s->interval_ms);
	struct sync_watch *w = watch_open(s);
	enum sync_trigger t = SYNC_TRIGGER_START;
	while (!(stop && *stop)) {
		sync_pass(s, t, NULL);
		if (!w && t != SYNC_TRIGGER_START)
			w = watch_open(s);
		int next = wait_next(s, &w, time_mono_ms() + s->interval_ms, stop);
		if (next < 0)
			break;
		t = (enum sync_trigger)next;
	}
	sync_watch_close(w);
	logf_(s, LOG_INFO, "sync of %s stopped", s->dir);
	return 0;
}
