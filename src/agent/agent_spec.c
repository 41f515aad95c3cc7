/*
 * agent_spec — the hash of the container-defining fields of a TaskSpec
 * (agent_spec.h). Canonical JSON (sorted keys, compact) makes the hash
 * independent of the order a manifest or the server wrote keys in; FNV-1a
 * is enough: this tells edits apart, it does not defend against anyone.
 */
#include "agent/agent_spec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"

static const char *const hashed_fields[] = {"image", "command",   "args",
                                            "env",   "resources", "ports"};

char *agent_spec_hash(json_t *spec)
{
	_cleanup_json_ json_t *o = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(hashed_fields); i++) {
		json_t *v = json_object_get(spec, hashed_fields[i]);
		if (v && !json_is_null(v))
			json_object_set(o, hashed_fields[i], v);
	}
	_cleanup_free_ char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return xasprintf("%016" PRIx64, h);
}
