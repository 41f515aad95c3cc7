/*
 * client_internal — what client.c shares with the other files of the
 * client library (client_watch.c). Not installed; not for other libraries.
 */
#pragma once

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "client/client.h"

struct kerr;
struct sbuf;

struct client {
	CURL *curl;
	char **servers;    /* owned, NULL-terminated: client_servers_parse */
	size_t n_servers;  /* >= 1 */
	size_t cur;        /* the current server: servers[cur] */
	char *server;      /* borrowed: servers[cur], without a trailing '/' */
	char *server_list; /* owned: "URL1,URL2" */
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

/* Failover (client.h, "Several servers"). Whether a request that ended
 * with rc (and, when rc is CURLE_OK, with HTTP status http) may go to the
 * next server; get: it is a GET (the answer may be asked for again). Always
 * false with one server. */
bool client_should_fail_over(struct client *c, CURLcode rc, long http, bool get);
/* Appends "; URL: what failed" for the current server to *tried. */
void client_note_failure(struct client *c, CURLcode rc, const char *ebuf, long http,
                         struct sbuf *tried);
/* Makes the next server (in list order, wrapping) the current one. */
void client_next_server(struct client *c);
/* The error once every server failed: errno -r (the last failure's),
 * naming each server tried (*tried, from client_note_failure). */
int client_all_failed(int r, const struct sbuf *tried, struct kerr *err);
/* For a write that may have reached a server and is not sent again: says
 * so in err (with several servers; unchanged with one). Returns r. */
int client_not_retried(struct client *c, int r, CURLcode rc, struct kerr *err);
