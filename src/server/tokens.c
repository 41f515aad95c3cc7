/*
 * server/tokens — /apis/keel/v1/tokens: minting, listing and revoking API
 * tokens (admins only: server/authz.c). Not a kind: minted tokens are kept
 * in the store under "tokens//NAME" (as hashes, server/auth.c), which no
 * kind route reads and the watch hub drops, so every server sharing the
 * store knows them; the API shows no resourceVersion and has no watch.
 *
 *   POST   /apis/keel/v1/tokens         {"metadata":{"name":N},"spec":{"role":R}}
 *          -> 201 Token with status.token: the only time it is shown
 *   GET    /apis/keel/v1/tokens         -> TokenList (names, roles, sources)
 *   DELETE /apis/keel/v1/tokens/{name}  -> 200 Status Success; the watch
 *          streams open with it end with an ERROR event (401)
 *
 * For role node the name is the node's name. A server started with
 * --token-file refuses POST and DELETE (403): the file is the only source.
 */
#include <errno.h>
#include <string.h>

#include "api/meta.h"
#include "api/status.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "server/handlers.h"
#include "server/http.h"
#include "server/watch.h"

static enum MHD_Result token_create(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *body = NULL;
	if (srv_json_parse(r->body.data, r->body.len, true, &body, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	const char *kind = json_string_value(json_object_get(body, "kind"));
	if (kind && !streq(kind, "Token"))
		return srv_reply_status(r, 400, "BadRequest", "kind \"%s\" is not Token", kind);
	const char *name = json_string_value(api_obj_get_path(body, "metadata.name"));
	const char *role = json_string_value(api_obj_get_path(body, "spec.role"));
	if (!name || !*name)
		kerr_set(&err, EINVAL, "metadata.name: Required value");
	else if (!role || !*role)
		kerr_set(&err, EINVAL, "spec.role: Required value (admin, viewer or node)");
	_cleanup_free_ char *tok = NULL;
	if (err.code || srv_auth_mint(r->srv->auth, name, role, &tok, &err) < 0) {
		if (err.code == EINVAL) {
			_cleanup_free_ char *m = xasprintf("Token \"%s\" is invalid: %s",
			                                   name ? name : "", kerr_msg(&err));
			return srv_reply_status(r, 422, "Invalid", "%s", m);
		}
		return srv_reply_error(r, &err, "tokens", name);
	}
	log_info("token \"%s\" (role %s) minted by %s", name, role, r->who.name);
	return srv_reply_json(r, 201,
	                      json_pack("{s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s, s:s}}", "apiVersion",
	                                "keel/v1", "kind", "Token", "metadata", "name", name,
	                                "spec", "role", role, "status", "source", "minted", "token",
	                                tok),
	                      NULL, NULL);
}

enum MHD_Result srv_handle_tokens(struct srv_req *r)
{
	if (r->method == SRV_POST)
		return token_create(r);
	if (r->method == SRV_DELETE) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (srv_auth_revoke(r->srv->auth, r->route.name, &err) < 0)
			return srv_reply_error(r, &err, "tokens", r->route.name);
		log_info("token \"%s\" revoked by %s", r->route.name, r->who.name);
		/* a token's user is its name: what it has open ends with it */
		srv_hub_end_user(r->srv->hub, r->route.name);
		return srv_reply_json(r, 200, api_status_success("tokens", r->route.name), NULL,
		                      NULL);
	}
	return srv_reply_json(r, 200,
	                      json_pack("{s:s, s:s, s:{}, s:o}", "apiVersion", "keel/v1", "kind",
	                                "TokenList", "metadata", "items",
	                                srv_auth_list(r->srv->auth)),
	                      NULL, NULL);
}
