/*
 * agent_health — health checks on their own thread, so that a slow check
 * (an HTTP endpoint that hangs until its timeout) never stalls the
 * reconcile loop. The reconcile thread declares what to check
 * (agent_health_sync) and reads the verdict; this thread runs each check
 * every periodSeconds after initialDelaySeconds, and counts consecutive
 * failures. httpGet passes on a 2xx or 3xx answer from
 * http://IP:PORT/PATH; exec passes when the command exits 0 inside the
 * container (runtime exec, which runtime.h allows from another thread).
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

struct health_job {
	struct health_job *next;
	char *uid, *cid, *ip;
	json_t *check;
	int64_t due_ms;
	unsigned failures;
	bool ok, busy, dropped;
	char *message;
};

static void job_free(struct health_job *j)
{
	free(j->uid);
	free(j->cid);
	free(j->ip);
	json_decref(j->check);
	free(j->message);
	free(j);
}

static long int_or(json_t *check, const char *key, long dflt)
{
	json_t *v = json_object_get(check, key);
	return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

static struct health_job **find(struct agent *a, const char *uid)
{
	struct health_job **p = &a->jobs;
	while (*p && !streq((*p)->uid, uid))
		p = &(*p)->next;
	return p;
}

static void unlink_job(struct health_job **p)
{
	struct health_job *j = *p;
	*p = j->next;
	if (j->busy)
		j->dropped = true; /* the health thread frees it when its check returns */
	else
		job_free(j);
}

void agent_health_drop(struct agent *a, const char *uid)
{
	pthread_mutex_lock(&a->mu);
	struct health_job **p = find(a, uid);
	if (*p)
		unlink_job(p);
	pthread_mutex_unlock(&a->mu);
}

void agent_health_sync(struct agent *a, const char *uid, const char *cid, const char *ip,
                       json_t *check, struct health_view *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&a->mu);
	struct health_job **p = find(a, uid);
	if (*p && (!check || !streq((*p)->cid, cid) || !json_equal((*p)->check, check)))
		unlink_job(p);
	if (check && !*p) {
		struct health_job *j = xcalloc(1, sizeof(*j));
		j->uid = xstrdup(uid);
		j->cid = xstrdup(cid);
		j->ip = xstrdup(ip ? ip : "127.0.0.1");
		j->check = json_deep_copy(check);
		j->due_ms = time_mono_ms() + int_or(check, "initialDelaySeconds", 0) * 1000;
		*p = j;
	}
	if (*p) {
		out->has_check = true;
		out->ready = (*p)->ok;
		out->unhealthy = (*p)->failures >= (unsigned)int_or(check, "failureThreshold", 3);
		out->message = (*p)->message ? xstrdup((*p)->message) : NULL;
	}
	pthread_mutex_unlock(&a->mu);
}

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
	(void)p, (void)ud;
	return s * n;
}

static bool check_http(json_t *get, const char *ip, long timeout_s, char **msg)
{
	const char *path = json_string_value(json_object_get(get, "path"));
	long port = int_or(get, "port", 80);
	_cleanup_free_ char *url = xasprintf("http://%s:%ld%s", ip, port, path ? path : "/");
	CURL *h = curl_easy_init();
	if (!h) {
		*msg = xstrdup("cannot create an HTTP handle");
		return false;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_s * 1000);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "keel-agent/" KEEL_VERSION " health check");
	CURLcode rc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		*msg = xasprintf("health check GET %s: %s", url, curl_easy_strerror(rc));
		return false;
	}
	if (code < 200 || code >= 400) {
		*msg = xasprintf("health check GET %s: HTTP %ld", url, code);
		return false;
	}
	return true;
}

static bool check_exec(struct agent *a, json_t *ex, const char *cid, long timeout_s, char **msg)
{
	json_t *cmd = json_object_get(ex, "command");
	size_t n = json_array_size(cmd);
	if (n == 0) {
		*msg = xstrdup("health check exec: empty command");
		return false;
	}
	char **argv = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		argv[i] = (char *)json_string_value(json_array_get(cmd, i));
	int code = -1;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = a->rt->ops->exec(a->rt, cid, argv, (int)timeout_s, &code, &err);
	free(argv);
	if (r < 0) {
		*msg = xasprintf("health check exec %s: %s",
		                 json_string_value(json_array_get(cmd, 0)), kerr_msg(&err));
		return false;
	}
	if (code != 0) {
		*msg = xasprintf("health check exec %s: exit code %d",
		                 json_string_value(json_array_get(cmd, 0)), code);
		return false;
	}
	return true;
}

static void run_one(struct agent *a, struct health_job *j)
{
	long timeout_s = int_or(j->check, "timeoutSeconds", 1);
	char *msg = NULL;
	json_t *get = json_object_get(j->check, "httpGet");
	bool ok = json_is_object(get)
	              ? check_http(get, j->ip, timeout_s, &msg)
	              : check_exec(a, json_object_get(j->check, "exec"), j->cid, timeout_s, &msg);
	pthread_mutex_lock(&a->mu);
	j->busy = false;
	if (j->dropped) {
		job_free(j);
		free(msg);
	} else {
		bool changed =
		    ok != j->ok ||
		    (!ok && j->failures + 1 >= (unsigned)int_or(j->check, "failureThreshold", 3));
		j->failures = ok ? 0 : j->failures + 1;
		j->ok = ok;
		free(j->message);
		j->message = msg;
		j->due_ms = time_mono_ms() + int_or(j->check, "periodSeconds", 10) * 1000;
		if (changed) {
			a->dirty = true;
			pthread_cond_signal(&a->cond);
		}
	}
	pthread_mutex_unlock(&a->mu);
}

void *agent_health_thread(void *arg)
{
	struct agent *a = arg;
	while (!atomic_load(&a->stop)) {
		struct health_job *due = NULL;
		pthread_mutex_lock(&a->mu);
		int64_t now = time_mono_ms();
		for (struct health_job *j = a->jobs; j && !due; j = j->next)
			if (!j->busy && j->due_ms <= now)
				due = j;
		if (due)
			due->busy = true;
		pthread_mutex_unlock(&a->mu);
		if (due)
			run_one(a, due);
		else
			usleep(100 * 1000);
	}
	return NULL;
}

void agent_health_free(struct agent *a)
{
	pthread_mutex_lock(&a->mu);
	while (a->jobs) {
		struct health_job *j = a->jobs;
		a->jobs = j->next;
		job_free(j);
	}
	pthread_mutex_unlock(&a->mu);
}
