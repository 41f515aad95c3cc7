/*
 * client_config: where the CLI (and anything else using the client) finds
 * its server and token. The order is the contract's (notes/http-contract.md):
 * flags, then environment, then a config file, then the default. Server and
 * token are resolved independently, so `KEEL_SERVER=... keel get` still
 * takes its token from the config file, as kubectl's flags override single
 * fields of a kubeconfig.
 *
 * The CA file that verifies an https server is resolved the same way
 * (--ca, KEEL_CA, "ca"). A relative "ca" in a config file is relative to
 * the config file's directory, as kubeconfig's certificate paths are, so
 * that a config and its CA can be copied together.
 *
 * A server may be a list ("URL1,URL2", or a "servers" array in the file):
 * it is parsed here once, so that every source's mistakes are reported
 * with the source and the entry, and struct client gets a clean list.
 *
 * The last fallback is the config file that `keel server` writes into its
 * data directory, so that on a single machine `keel server &; keel get
 * tasks` works with no setup at all; the data directory rule is shared with
 * the server for exactly that reason.
 */
#include "client/client.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

/* A config file is small; anything bigger is not one. */
#define CONFIG_MAX_BYTES (64 * 1024)

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

char *client_default_data_dir(void)
{
	const char *v = env_nonempty("KEEL_DATA_DIR");
	if (v)
		return xstrdup(v);
	if (geteuid() == 0)
		return xstrdup("/var/lib/keel");
	v = env_nonempty("XDG_DATA_HOME");
	if (v)
		return xasprintf("%s/keel", v);
	v = env_nonempty("HOME");
	if (v)
		return xasprintf("%s/.local/share/keel", v);
	return NULL;
}

char *client_user_config_path(void)
{
	const char *v = env_nonempty("XDG_CONFIG_HOME");
	if (v)
		return xasprintf("%s/keel/config", v);
	v = env_nonempty("HOME");
	return v ? xasprintf("%s/.config/keel/config", v) : NULL;
}

/* "entry 2 (\"x\")" when the list has several entries, else "\"x\"". */
static int bad_entry(struct kerr *err, size_t idx, size_t n, const char *e, size_t elen,
                     const char *why)
{
	if (n > 1)
		return kerr_set(err, EINVAL,
		                "invalid server URL \"%.*s\" (entry %zu of the list): %s",
		                (int)elen, e, idx + 1, why);
	return kerr_set(err, EINVAL, "invalid server URL \"%.*s\": %s", (int)elen, e, why);
}

int client_servers_parse(const char *list, char ***out, size_t *n_out, struct kerr *err)
{
	if (!list)
		return kerr_set(err, EINVAL, "empty server list");
	size_t n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	if (n > CLIENT_MAX_SERVERS)
		return kerr_set(err, EINVAL, "server list has %zu entries; at most %d", n,
		                CLIENT_MAX_SERVERS);
	char **v = xcalloc(n + 1, sizeof(*v));
	const char *p = list;
	for (size_t i = 0; i < n; i++) {
		const char *end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		const char *b = p, *e = end;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		size_t len = (size_t)(e - b);
		size_t scheme = len >= 7 && strncmp(b, "http://", 7) == 0    ? 7
		                : len >= 8 && strncmp(b, "https://", 8) == 0 ? 8
		                                                             : 0;
		while (scheme && len > scheme && b[len - 1] == '/') /* "http://h:1/" + "/apis" */
			len--;
		int r = 0;
		if (len == 0)
			r = n > 1 ? kerr_set(err, EINVAL, "server list \"%s\": entry %zu is empty",
			                     list, i + 1)
			          : kerr_set(err, EINVAL, "empty server URL");
		else if (!scheme)
			r = bad_entry(err, i, n, b, len, "must start with http:// or https://");
		else if (len == scheme || b[scheme] == '/')
			r = bad_entry(err, i, n, b, len, "no host");
		for (size_t j = 0; r == 0 && j < i; j++)
			if (strlen(v[j]) == len && strncmp(v[j], b, len) == 0)
				r = kerr_set(err, EINVAL,
				             "server list \"%s\": %s is listed twice (entries %zu "
				             "and %zu)",
				             list, v[j], j + 1, i + 1);
		if (r < 0) {
			client_servers_free(v);
			return r;
		}
		v[i] = xstrndup(b, len);
		p = end + 1;
	}
	*out = v;
	*n_out = n;
	return 0;
}

void client_servers_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* The list in its normal form, "URL1,URL2"; err names `from`. */
static int normalise_servers(const char *list, const char *from, char **out, struct kerr *err)
{
	char **v = NULL;
	size_t n = 0;
	if (client_servers_parse(list, &v, &n, err) < 0) {
		if (err)
			kerr_prefix(err, "%s", from);
		return -EINVAL;
	}
	struct sbuf b = SBUF_INIT;
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&b, "%s%s", i ? "," : "", v[i]);
	client_servers_free(v);
	*out = sbuf_take(&b);
	return 0;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0;
}

/* The config file to read: explicit (must exist, else -ENOENT), else the
 * first implicit one that exists, else NULL. */
static int pick_config_file(const char *flag_config, char **out, struct kerr *err)
{
	const char *expl = flag_config && *flag_config ? flag_config : env_nonempty("KEEL_CONFIG");
	if (expl) {
		if (!file_exists(expl))
			return kerr_set(err, ENOENT, "config file %s (from %s) does not exist",
			                expl,
			                flag_config && *flag_config ? "--config" : "KEEL_CONFIG");
		*out = xstrdup(expl);
		return 0;
	}
	_cleanup_free_ char *user = client_user_config_path();
	if (file_exists(user)) {
		*out = TAKE_PTR(user);
		return 0;
	}
	_cleanup_free_ char *data = client_default_data_dir();
	_cleanup_free_ char *dcfg = data ? xasprintf("%s/config", data) : NULL;
	if (file_exists(dcfg)) {
		*out = TAKE_PTR(dcfg);
		return 0;
	}
	*out = NULL;
	return 0;
}

static int config_string(json_t *cfg, const char *key, const char *path, char **out,
                         struct kerr *err)
{
	json_t *v = json_object_get(cfg, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return kerr_set(err, EINVAL, "config file %s: \"%s\" must be a string", path, key);
	if (*json_string_value(v))
		*out = xstrdup(json_string_value(v));
	return 0;
}

/* ca relative to the directory of the config file at path. Owned. */
static char *config_relative(const char *path, char *ca)
{
	if (!ca || ca[0] == '/')
		return ca;
	const char *slash = strrchr(path, '/');
	if (!slash)
		return ca;
	char *abs = xasprintf("%.*s/%s", (int)(slash - path), path, ca);
	free(ca);
	return abs;
}

/* "servers": ["URL1", "URL2"] -> "URL1,URL2" (checked by the caller). */
static int config_servers(json_t *cfg, const char *path, char **out, struct kerr *err)
{
	json_t *v = json_object_get(cfg, "servers");
	if (!v || json_is_null(v))
		return 0;
	if (json_object_get(cfg, "server"))
		return kerr_set(err, EINVAL,
		                "config file %s: give \"server\" or \"servers\", not both", path);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return kerr_set(err, EINVAL,
		                "config file %s: \"servers\" must be a non-empty array of URLs",
		                path);
	struct sbuf b = SBUF_INIT;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		const char *s = json_string_value(e);
		if (!s || !*s || strchr(s, ',')) {
			sbuf_free(&b);
			return kerr_set(err, EINVAL,
			                "config file %s: \"servers\"[%zu] must be one URL (a "
			                "non-empty string without commas)",
			                path, i);
		}
		sbuf_printf(&b, "%s%s", i ? "," : "", s);
	}
	*out = sbuf_take(&b);
	return 0;
}

static int read_config(const char *path, char **server, char **token, char **ca, struct kerr *err)
{
	_cleanup_free_ char *text = NULL;
	int r = file_read_all(path, CONFIG_MAX_BYTES, &text, NULL, err);
	if (r < 0) {
		if (err)
			kerr_prefix(err, "cannot read config file");
		return r;
	}
	json_error_t jerr;
	_cleanup_json_ json_t *cfg = json_loads(text, 0, &jerr);
	if (!json_is_object(cfg))
		return kerr_set(
		    err, EINVAL, "config file %s:%d:%d: %s", path, jerr.line, jerr.column,
		    cfg ? "must be a JSON object {\"server\": ..., \"token\": ...}" : jerr.text);
	_cleanup_free_ char *s = NULL, *t = NULL, *c = NULL;
	if (config_string(cfg, "server", path, &s, err) < 0 ||
	    config_servers(cfg, path, &s, err) < 0 ||
	    config_string(cfg, "token", path, &t, err) < 0 ||
	    config_string(cfg, "ca", path, &c, err) < 0)
		return -EINVAL;
	*server = TAKE_PTR(s);
	*token = TAKE_PTR(t);
	*ca = config_relative(path, TAKE_PTR(c));
	return 0;
}

int client_config_resolve(const char *flag_server, const char *flag_token, const char *flag_config,
                          const char *flag_ca, struct client_config *out, struct kerr *err)
{
	_cleanup_free_ char *file = NULL, *fserver = NULL, *ftoken = NULL, *fca = NULL;
	int r = pick_config_file(flag_config, &file, err);
	if (r < 0)
		return r;
	if (file && (r = read_config(file, &fserver, &ftoken, &fca, err)) < 0)
		return r;
	struct client_config c = {0};
	const char *env_server = env_nonempty("KEEL_SERVER");
	const char *env_token = env_nonempty("KEEL_TOKEN");
	const char *server = CLIENT_DEFAULT_SERVER;
	_cleanup_free_ char *from = NULL;
	if (flag_server && *flag_server)
		server = flag_server, c.server_from = "flag", from = xstrdup("--server");
	else if (env_server)
		server = env_server, c.server_from = "env", from = xstrdup("KEEL_SERVER");
	else if (fserver)
		server = fserver, c.server_from = "config",
		from = xasprintf("config file %s", file);
	else
		c.server_from = "default", from = xstrdup("default server");
	if (normalise_servers(server, from, &c.server, err) < 0)
		return -EINVAL;
	if (flag_token && *flag_token)
		c.token = xstrdup(flag_token), c.token_from = "flag";
	else if (env_token)
		c.token = xstrdup(env_token), c.token_from = "env";
	else if (ftoken)
		c.token = TAKE_PTR(ftoken), c.token_from = "config";
	const char *env_ca = env_nonempty("KEEL_CA");
	if (flag_ca && *flag_ca)
		c.ca = xstrdup(flag_ca), c.ca_from = "flag";
	else if (env_ca)
		c.ca = xstrdup(env_ca), c.ca_from = "env";
	else if (fca)
		c.ca = TAKE_PTR(fca), c.ca_from = "config";
	c.config_file = TAKE_PTR(file);
	*out = c;
	return 0;
}

void client_config_clear(struct client_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->token);
	free(cfg->ca);
	free(cfg->config_file);
	memset(cfg, 0, sizeof(*cfg));
}
