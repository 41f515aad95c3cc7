/*
 * controllers/leader — the elector of leader.h: a pure state machine
 * (leader_fsm_*) and a thread that runs it against the API (GET, then PUT
 * /apis/keel/v1/leases/NAME with the read resourceVersion).
 *
 * Why the deadline is counted from when the renewal was SENT: the server
 * stamps renewTime when it handles the PUT, which is after the send, so
 * any other holder's takeover (renewTime + D by the server's judgement, or
 * D of no change by the standby's own clock, which starts even later)
 * comes after sent + D > sent + 2D/3, when this process has already
 * stopped. A request stuck in the network cannot extend leadership: the
 * deadline only moves when an answer says the write was committed.
 */
#include "controllers/leader.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

/* ---- the state machine ---- */

void leader_fsm_init(struct leader_fsm *f, int64_t duration_ms)
{
	memset(f, 0, sizeof *f);
	f->duration_ms = duration_ms;
}

bool leader_fsm_should_try(struct leader_fsm *f, const struct leader_record *rec, const char *me,
                           int64_t now)
{
	if (!rec->exists) {
		f->seen = false;
		return true;
	}
	if (!f->seen || f->seen_rv != rec->rv) {
		f->seen = true;
		f->seen_rv = rec->rv;
		f->seen_at = now;
	}
	if (!rec->holder || !*rec->holder || streq(rec->holder, me))
		return true;
	int64_t d = rec->duration_ms > 0 ? rec->duration_ms : f->duration_ms;
	return now - f->seen_at >= d;
}

bool leader_fsm_won(struct leader_fsm *f, int64_t sent)
{
	bool was = f->leading;
	f->leading = true;
	f->held_until = sent + f->duration_ms * 2 / 3;
	return !was;
}

bool leader_fsm_refused(struct leader_fsm *f)
{
	bool was = f->leading;
	f->leading = false;
	return was;
}

bool leader_fsm_expire(struct leader_fsm *f, int64_t now)
{
	if (!f->leading || now < f->held_until)
		return false;
	f->leading = false;
	return true;
}

bool leader_fsm_held(const struct leader_fsm *f, int64_t now)
{
	return f->leading && now < f->held_until;
}

int64_t leader_fsm_next_ms(const struct leader_fsm *f, bool failed, int64_t now)
{
	int64_t look = f->duration_ms / 10 > 100 ? f->duration_ms / 10 : 100;
	int64_t wait = f->leading && !failed ? f->duration_ms / 3 : look;
	if (f->leading && f->held_until - now < wait) /* wake to notice the deadline */
		wait = f->held_until - now > 0 ? f->held_until - now : 0;
	return wait;
}

/* ---- the elector ---- */

struct leader {
	struct client_opts copts;
	char *server, *token, *ca_file;
	char *lease, *what, *identity, *path;
	void (*on_change)(void *ctx, bool leading);
	void *ctx;
	struct client *c;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct leader_fsm fsm; /* mu */
	uint64_t held_rv;      /* the elector thread only: the version we wrote */
};

char *leader_identity_new(void)
{
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) < 0 || !*host)
		snprintf(host, sizeof host, "keel");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned seed = (unsigned)ts.tv_nsec ^ (unsigned)getpid();
	return xasprintf("%s-%d-%04x", host, (int)getpid(), rand_r(&seed) & 0xffff);
}

char *leader_identity_of_dir(const char *dir)
{
	_cleanup_free_ char *path = xasprintf("%s/controller-identity", dir);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	char *id = NULL;
	if (identity_load(path, NULL, &id, &err) == 0)
		return id;
	log_warn("controllers: cannot keep their leader identity in %s (%s): restarted, this "
	         "server waits for its leader leases to lapse",
	         path, kerr_msg(&err));
	free(id);
	return leader_identity_new();
}

/* The lease as read: 0 (rec filled, *obj owned), or -errno. */
static int read_lease(struct leader *l, struct leader_record *rec, json_t **obj, struct kerr *err)
{
	struct client_response resp = {0};
	memset(rec, 0, sizeof *rec);
	*obj = NULL;
	int r = client_request(l->c, "GET", l->path, NULL, NULL, &resp, err);
	if (r == -ENOENT) {
		kerr_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	*obj = json_incref(resp.body);
	client_response_clear(&resp);
	json_t *spec = json_object_get(*obj, "spec");
	rec->exists = true;
	rec->holder = json_string_value(json_object_get(spec, "holderIdentity"));
	rec->rv = api_obj_rv(*obj);
	rec->duration_ms = json_integer_value(json_object_get(spec, "leaseDurationSeconds")) * 1000;
	return 0;
}

/* PUTs the lease as holder ("" releases) at version rv (0: none). 0 with
 * *rv_out the new version; -EBUSY/-ESTALE refused; or -errno. */
static int write_lease(struct leader *l, const char *holder, uint64_t rv, uint64_t *rv_out,
                       struct kerr *err)
{
	char rvs[24];
	snprintf(rvs, sizeof rvs, "%llu", (unsigned long long)rv);
	_cleanup_json_ json_t *body = json_pack(
	    "{s:s, s:s, s:{s:s}, s:{s:s, s:I}}", "kind", "Lease", "apiVersion", "keel/v1",
	    "metadata", "name", l->lease, "spec", "holderIdentity", holder, "leaseDurationSeconds",
	    (json_int_t)(*holder ? l->fsm.duration_ms / 1000 : 1));
	if (rv)
		json_object_set_new(json_object_get(body, "metadata"), "resourceVersion",
		                    json_string(rvs));
	struct client_response resp = {0};
	int r = client_request(l->c, "PUT", l->path, NULL, body, &resp, err);
	if (r == 0 && rv_out)
		*rv_out = api_obj_rv(resp.body);
	client_response_clear(&resp);
	if (r < 0 && client_last_http_code(l->c) == 409)
		return -EBUSY;
	return r;
}

static void changed(struct leader *l, bool leading, const char *why)
{
	if (leading)
		log_info("leader: became leader for %s (lease %s, holder %s)", l->what, l->lease,
		         l->identity);
	else
		log_warn("leader: lost leadership for %s (lease %s): %s; %s stopped", l->what,
		         l->lease, why, l->what);
	if (l->on_change)
		l->on_change(l->ctx, leading);
}

/* One look: read, maybe write. Returns false when the look failed. */
static bool look(struct leader *l, bool *warned)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct leader_record rec;
	_cleanup_json_ json_t *obj = NULL;
	int r = read_lease(l, &rec, &obj, &err);
	pthread_mutex_lock(&l->mu);
	bool go = r == 0 && leader_fsm_should_try(&l->fsm, &rec, l->identity, time_mono_ms());
	pthread_mutex_unlock(&l->mu);
	if (r == 0 && go) {
		int64_t sent = time_mono_ms();
		uint64_t rv = 0;
		r = write_lease(l, l->identity, rec.exists ? rec.rv : 0, &rv, &err);
		pthread_mutex_lock(&l->mu);
		bool won = r == 0 && leader_fsm_won(&l->fsm, sent);
		bool lost = r == -EBUSY && leader_fsm_refused(&l->fsm);
		pthread_mutex_unlock(&l->mu);
		if (r == 0)
			l->held_rv = rv;
		if (won || lost)
			changed(l, won, kerr_msg(&err));
		if (r == -EBUSY)
			r = 0; /* an answer, not a failure */
	}
	if (r < 0 && !*warned)
		log_warn("leader: %s: lease %s: %s", l->what, l->lease, kerr_msg(&err));
	*warned = r < 0;
	return r == 0;
}

static void *elector_thread(void *arg)
{
	struct leader *l = arg;
	bool warned = false;
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		pthread_mutex_unlock(&l->mu);
		bool ok = look(l, &warned);
		pthread_mutex_lock(&l->mu);
		int64_t now = time_mono_ms();
		if (leader_fsm_expire(&l->fsm, now)) {
			pthread_mutex_unlock(&l->mu);
			changed(l, false, "could not renew it before the renew deadline");
			pthread_mutex_lock(&l->mu);
		}
		int64_t wait = leader_fsm_next_ms(&l->fsm, !ok, now);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = ts.tv_nsec + wait * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) == 0) {
		}
		/* a deadline that passed while waiting (or while the process
		 * was stopped) is noticed before the next look */
		if (leader_fsm_expire(&l->fsm, time_mono_ms())) {
			pthread_mutex_unlock(&l->mu);
			changed(l, false, "could not renew it before the renew deadline");
			pthread_mutex_lock(&l->mu);
		}
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int leader_start(const struct leader_opts *o, struct leader **out, struct kerr *err)
{
	struct leader *l = xcalloc(1, sizeof *l);
	l->copts = o->client;
	l->server = o->client.server ? xstrdup(o->client.server) : NULL;
	l->token = o->client.token ? xstrdup(o->client.token) : NULL;
	l->ca_file = o->client.ca_file ? xstrdup(o->client.ca_file) : NULL;
	l->copts.server = l->server;
	l->copts.token = l->token;
	l->copts.ca_file = l->ca_file;
	l->lease = xstrdup(o->lease);
	l->what = xstrdup(o->what ? o->what : o->lease);
	l->identity = xstrdup(o->identity);
	_cleanup_free_ char *esc = client_escape(o->lease);
	l->path = xasprintf("/apis/keel/v1/leases/%s", esc);
	l->on_change = o->on_change;
	l->ctx = o->ctx;
	long d = o->duration_ms > 0 ? o->duration_ms : LEADER_DEFAULT_MS;
	d = (d + 999) / 1000 * 1000;
	leader_fsm_init(&l->fsm, d);
	/* a request must not outlast the renew deadline it is meant to keep */
	l->copts.timeout_ms = d / 3 > 500 ? d / 3 : 500;
	if (l->copts.connect_timeout_ms <= 0 || l->copts.connect_timeout_ms > l->copts.timeout_ms)
		l->copts.connect_timeout_ms = l->copts.timeout_ms;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	int r = client_new(&l->copts, &l->c, err);
	int e = r < 0 ? 0 : pthread_create(&l->thread, NULL, elector_thread, l);
	if (r < 0 || e) {
		if (e)
			kerr_set(err, e, "leader %s: cannot start a thread: %s", l->lease,
			         strerror(e));
		l->stop = true;
		leader_stop(l);
		return r < 0 ? r : -e;
	}
	*out = l;
	return 0;
}

bool leader_held(struct leader *l)
{
	pthread_mutex_lock(&l->mu);
	bool h = leader_fsm_held(&l->fsm, time_mono_ms());
	pthread_mutex_unlock(&l->mu);
	return h;
}

void leader_stop(struct leader *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	bool running = !l->stop;
	l->stop = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (running)
		pthread_join(l->thread, NULL);
	if (l->c && leader_fsm_held(&l->fsm, time_mono_ms())) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (write_lease(l, "", l->held_rv, NULL, &err) == 0)
			log_info("leader: released lease %s (%s)", l->lease, l->what);
		else
			log_debug("leader: releasing lease %s: %s", l->lease, kerr_msg(&err));
		l->fsm.leading = false;
	}
	client_free(l->c);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->server);
	free(l->token);
	free(l->ca_file);
	free(l->lease);
	free(l->what);
	free(l->identity);
	free(l->path);
	free(l);
}
