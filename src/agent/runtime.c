/*
 * runtime — the helpers of runtime.h shared by every backend: freeing the
 * status and info structs they hand to the agent.
 */
#include "agent/runtime.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void rt_status_clear(struct rt_status *st)
{
	if (!st)
		return;
	free(st->id);
	free(st->task_uid);
	free(st->ns);
	free(st->name);
	free(st->reason);
	free(st->message);
	free(st->ip);
	free(st->ports);
	free(st->spec_hash);
	memset(st, 0, sizeof(*st));
}

void rt_port_env(json_t *spec, const int *host_ports, json_t *env)
{
	bool user_port = false;
	size_t i;
	json_t *e, *p;
	json_array_foreach(json_object_get(spec, "env"), i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		user_port = user_port || (name && strcmp(name, "PORT") == 0);
	}
	json_array_foreach(json_object_get(spec, "ports"), i, p)
	{
		json_int_t cport = json_integer_value(json_object_get(p, "containerPort"));
		int v = host_ports ? host_ports[i] : (int)cport;
		const char *name = json_string_value(json_object_get(p, "name"));
		if (name && *name) {
			char var[64] = "KEEL_PORT_";
			size_t k = strlen(var);
			for (const char *c = name; *c && k < sizeof(var) - 1; c++)
				var[k++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
			var[k] = '\0';
			json_array_append_new(env, json_sprintf("%s=%d", var, v));
		}
		json_array_append_new(env, json_sprintf("KEEL_PORT_%d=%d", (int)cport, v));
		if (i == 0 && !user_port)
			json_array_append_new(env, json_sprintf("PORT=%d", v));
	}
}

void rt_status_array_free(struct rt_status *sts, size_t n)
{
	for (size_t i = 0; sts && i < n; i++)
		rt_status_clear(&sts[i]);
	free(sts);
}

void rt_info_clear(struct rt_info *info)
{
	if (!info)
		return;
	free(info->name);
	free(info->version);
	free(info->warning);
	memset(info, 0, sizeof(*info));
}
