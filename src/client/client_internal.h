/*
 * client_internal — what client.c shares with the other files of the
 * client library (client_watch.c). Not installed; not for other libraries.
 */
#pragma once

#include <curl/curl.h>
#include <stdatomic.h>

#include "client/client.h"

struct kerr;

struct client {
	CURL *curl;
	char *server; /* without a trailing '/' */
	char *token;
	char *ca_file;
	char *user_agent;
	long timeout_ms;
	long connect_timeout_ms;
	long watch_idle_s;
	void (*trace)(const char *method, const char *url, int http_code, long ms, void *ud);
	void *trace_ud;
	int last_http;
	json_t *last_status; /* owned */
	atomic_bool watch_cancelled; /* client_watch_cancel: any thread */
};

/* curl result -> errno, and the message for it (see client.h). */
int client_curl_errno(CURLcode rc);
int client_curl_error(struct client *c, CURLcode rc, const char *detail, struct kerr *err);
/* An HTTP error answer (text is its body, may be NULL) -> -errno; records
 * the Status in c->last_status. */
int client_http_error(struct client *c, int http, const char *text, struct kerr *err);
/* Reports one finished request to opts.trace, if set. */
void client_trace(struct client *c, const char *method, const char *url, int64_t start_ms);
/* Resets the easy handle and sets URL, auth, timeouts shared by all
 * requests; appends the common headers to *hdrs (caller frees). */
void client_curl_setup(struct client *c, const char *url, struct curl_slist **hdrs);
