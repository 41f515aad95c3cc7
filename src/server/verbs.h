/*
 * server/verbs — helpers the write verbs (verbs.c, subres.c) share.
 * Internal to src/server.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/http.h"
#include "server/write.h"

/* Replies for a finished srv_write: rc < 0 -> the error's Status; else
 * ok_code with w->result (taken). hdr/hval: an extra header, may be NULL. */
enum MHD_Result srv_reply_write(struct srv_req *r, int rc, struct kerr *err, struct srv_write *w,
                                unsigned ok_code, const char *hdr, const char *hval);

/* srv_reply_write with 200: a w->reply for the verbs that answer 200. */
enum MHD_Result srv_reply_write_ok(struct srv_req *r, int rc, struct kerr *err,
                                   struct srv_write *w);

/* 0 when ns exists (or k is cluster-scoped); -ENOENT `namespaces "x" not found`. */
int srv_check_namespace(struct server *srv, const struct api_kind *k, const char *ns,
                        struct kerr *err);
/* -ENOENT `tasks "web" not found` for w's key. */
int srv_not_found(struct srv_write *w, struct kerr *err);
/* -ESTALE (Conflict) when want_rv is non-zero and differs from live's. */
int srv_check_precondition(json_t *live, uint64_t want_rv, struct kerr *err);

/* Merge patch of the main resource, or (status_only) of status alone. */
struct srv_patch_arg {
	json_t *patch;
	uint64_t want_rv;
	bool status_only;
	const char *manager; /* for managedFields; see srv_update_manager */
};

/* The field manager of a non-apply write: ?fieldManager, else the
 * User-Agent's product name, else "unknown". May use buf. */
const char *srv_update_manager(struct srv_req *r, char *buf, size_t len);
int srv_patch_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err);
/* Checks the patch Content-Type (-EMEDIUMTYPE -> 415 for anything but a
 * merge patch, the message listing what the endpoint takes: apply_ok for
 * one that also takes server-side apply, whose caller handles those
 * before) and parses the body; *want_rv from metadata.resourceVersion. */
int srv_patch_parse(struct srv_req *r, bool apply_ok, json_t **patch, uint64_t *want_rv,
                    struct kerr *err);

/* The request's media type, lower-case, without parameters; NULL if none. */
const char *srv_media_type(struct srv_req *r, char *buf, size_t len);

/* An apply body: JSON, or (Content-Type application/apply-patch+yaml)
 * one YAML document. -EBADMSG naming the byte (JSON) or line (YAML); a
 * YAML string holding a NUL ("\0") is refused too, naming its field and
 * line, as JSON bodies cannot hold one. */
int srv_body_parse_manifest(struct srv_req *r, json_t **out, struct kerr *err);
/* The same on the body itself (yaml: the Content-Type was
 * application/apply-patch+yaml; a body starting with '{' is JSON anyway).
 * Pure: no request needed. */
int srv_apply_body_parse(const char *data, size_t len, bool yaml, json_t **out, struct kerr *err);
