/*
 * store_read — the two scans: store_list() over the objects database and
 * store_changes() over the change log.
 *
 * Each runs in one read-only transaction, so what it returns is one
 * snapshot: the revision a list reports is the one its items were read at,
 * and a replay ends at the revision that was current when it began, however
 * many writes commit meanwhile. Values are parsed as they are visited; a
 * value that does not parse is reported as -EIO naming its key rather than
 * skipped, because silently losing objects is worse than a failing list.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store.h"
#include "store/store_internal.h"

static inline void txn_abortp(MDB_txn **t)
{
	if (*t)
		mdb_txn_abort(*t);
}
static inline void cursor_closep(MDB_cursor **c)
{
	if (*c)
		mdb_cursor_close(*c);
}
#define _cleanup_txn_    _cleanup_(txn_abortp)
#define _cleanup_cursor_ _cleanup_(cursor_closep)

static bool has_prefix(const MDB_val *k, const char *prefix, size_t plen)
{
	return k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0;
}

static bool key_equals(const MDB_val *k, const char *s)
{
	return s && k->mv_size == strlen(s) && memcmp(k->mv_data, s, k->mv_size) == 0;
}

struct list_out {
	json_t *items;
	char *next;
};

/* Positions c at the first key >= start ("" = the first key). */
static int seek(MDB_cursor *c, const char *start, MDB_val *k, MDB_val *v)
{
	if (!*start)
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	k->mv_size = strlen(start);
	k->mv_data = (void *)start;
	return mdb_cursor_get(c, k, v, MDB_SET_RANGE);
}

static int list_scan(struct store *s, MDB_cursor *c, const char *prefix, const char *after,
                     size_t limit, store_filter_fn filter, void *ctx, struct list_out *out,
                     struct kerr *err)
{
	size_t plen = strlen(prefix);
	const char *start = after && strcmp(after, prefix) > 0 ? after : prefix;
	MDB_val k, v;
	int rc = seek(c, start, &k, &v);
	size_t count = 0;
	for (; rc == 0 && has_prefix(&k, prefix, plen); rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (key_equals(&k, after))
			continue;
		/* More keys remain under the prefix: out->next (the last key
		 * returned) continues. Whether they pass the filter is the next
		 * page's business, as in Kubernetes: that page may be empty. */
		if (limit && count == limit)
			return 1;
		_cleanup_free_ char *key = xstrndup(k.mv_data, k.mv_size);
		json_t *obj;
		int r = store_parse(key, &v, &obj, err);
		if (r < 0)
			return r;
		if (filter && !filter(ctx, obj)) {
			json_decref(obj);
			continue;
		}
		json_array_append_new(out->items, obj);
		free(out->next);
		out->next = TAKE_PTR(key);
		count++;
	}
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_error(s, rc, err, "store: list %s", prefix);
	return 0;
}

/* The list itself; runs inside store_enter/leave so that the read
 * transaction ends before store_close may close the environment. */
static int list_txn(struct store *s, const char *prefix, const char *after, size_t limit,
                    store_filter_fn filter, void *ctx, struct list_out *out, uint64_t *at,
                    struct kerr *err)
{
	_cleanup_txn_ MDB_txn *txn = NULL;
	_cleanup_cursor_ MDB_cursor *c = NULL;
	int r;
	if ((r = store_read_begin(s, &txn, err)) < 0 ||
	    (r = store_meta_get(s, txn, "revision", at, err)) < 0)
		return r;
	int rc = mdb_cursor_open(txn, s->objects, &c);
	if (rc)
		return store_mdb_error(s, rc, err, "store: list %s", prefix);
	return list_scan(s, c, prefix, after, limit, filter, ctx, out, err);
}

int store_list(struct store *s, const char *prefix, const char *after, size_t limit,
               store_filter_fn filter, void *ctx, json_t **items, uint64_t *rev, char **next,
               struct kerr *err)
{
	if (s->etcd)
		return store_etcd_list(s->etcd, prefix, after, limit, filter, ctx, items, rev, next,
		                       err);
	int r = store_enter(s, false, err);
	if (r < 0)
		return r;
	struct list_out out = {json_array(), NULL};
	uint64_t at = 0;
	r = list_txn(s, prefix ? prefix : "", after, limit, filter, ctx, &out, &at, err);
	store_leave(s);
	if (r < 0) {
		json_decref(out.items);
		free(out.next);
		return r;
	}
	if (r == 0) { /* the scan reached the end: no continuation */
		free(out.next);
		out.next = NULL;
	}
	*items = out.items;
	if (rev)
		*rev = at;
	if (next)
		*next = out.next;
	else
		free(out.next);
	return 0;
}

/* ---- change log replay -------------------------------------------------------------- */

static int event_type_parse(const char *s, enum store_event_type *out)
{
	static const char *const names[] = {
	    [STORE_ADDED] = "ADDED", [STORE_MODIFIED] = "MODIFIED", [STORE_DELETED] = "DELETED"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (streq(s, names[i])) {
			*out = (enum store_event_type)i;
			return 0;
		}
	return -1;
}

/* Decodes one log entry and hands it to fn. */
static int replay_one(const MDB_val *k, const MDB_val *v, store_event_fn fn, void *ctx,
                      struct kerr *err)
{
	if (k->mv_size != 8)
		return kerr_set(err, EIO, "store: corrupt change log key (%zu bytes, want 8)",
		                k->mv_size);
	uint64_t rev = store_unbe64(k->mv_data);
	char what[48];
	snprintf(what, sizeof what, "change log revision %llu", (unsigned long long)rev);
	_cleanup_json_ json_t *entry = NULL;
	int r = store_parse(what, v, &entry, err);
	if (r < 0)
		return r;
	struct store_event ev = {.rev = rev};
	ev.key = json_string_value(json_object_get(entry, "key"));
	ev.object = json_object_get(entry, "object");
	if (!ev.key || !json_is_object(ev.object) ||
	    event_type_parse(json_string_value(json_object_get(entry, "type")), &ev.type) < 0)
		return kerr_set(err, EIO, "store: corrupt data at %s: missing type, key or object",
		                what);
	return fn(ctx, &ev);
}

static int changes_txn(struct store *s, uint64_t after, store_event_fn fn, void *ctx,
                       struct kerr *err)
{
	_cleanup_txn_ MDB_txn *txn = NULL;
	_cleanup_cursor_ MDB_cursor *c = NULL;
	uint64_t rev, compacted;
	int r;
	if ((r = store_read_begin(s, &txn, err)) < 0 ||
	    (r = store_meta_get(s, txn, "revision", &rev, err)) < 0 ||
	    (r = store_meta_get(s, txn, "compacted", &compacted, err)) < 0)
		return r;
	if (after < compacted)
		return kerr_set(err, ERANGE,
		                "revision %llu has been compacted (oldest available: %llu)",
		                (unsigned long long)after, (unsigned long long)compacted);
	if (after >= rev)
		return 0;
	int rc = mdb_cursor_open(txn, s->log, &c);
	if (rc)
		return store_mdb_error(s, rc, err, "store: read change log");
	unsigned char kb[8];
	store_be64(after + 1, kb);
	MDB_val k = {8, kb}, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if ((r = replay_one(&k, &v, fn, ctx, err)) != 0)
			return r;
	}
	if (rc != MDB_NOTFOUND)
		return store_mdb_error(s, rc, err, "store: read change log");
	return 0;
}

int store_changes(struct store *s, uint64_t after, store_event_fn fn, void *ctx, struct kerr *err)
{
	if (s->etcd)
		return store_etcd_changes(s->etcd, after, fn, ctx, err);
	int r = store_enter(s, false, err);
	if (r < 0)
		return r;
	r = changes_txn(s, after, fn, ctx, err);
	store_leave(s);
	return r;
}
