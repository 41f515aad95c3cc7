/*
 * api/quantity — Kubernetes resource quantities: "250m", "1.5", "2",
 * "128Mi", "1G", "1e3", "0.5Gi". Values are returned in milli-units so that
 * CPU ("250m" -> 250) and memory ("128Mi" -> 134217728000) share one parser;
 * divide by 1000 (rounding up) for bytes. Pure, thread-safe.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

struct kerr;

/* Parses s. Returns 0 and sets *milli, or -EINVAL with a message such as
 * `invalid quantity "12x"` (suffixes: m, k, M, G, T, P, E, Ki, Mi, Gi, Ti,
 * Pi, Ei; decimal exponent e/E) or -ERANGE when it overflows. Negative
 * quantities are rejected. *milli is untouched on failure. */
int api_quantity_parse(const char *s, int64_t *milli, struct kerr *err);
/* Same, for a JSON string or number (YAML `cpu: 2` arrives as a number). */
int api_quantity_from_json(json_t *v, int64_t *milli, struct kerr *err);

/* CPU for display: 250 -> "250m", 2000 -> "2". Owned. */
char *api_quantity_format_cpu(int64_t millicores);
/* Memory for display: 134217728 -> "128Mi", 1000 -> "1000". Owned. */
char *api_quantity_format_bytes(int64_t bytes);
/* Convenience: cpu quantity to millicores / memory quantity to bytes (ceil). */
int api_quantity_cpu(json_t *v, int64_t *millicores, struct kerr *err);
int api_quantity_memory(json_t *v, int64_t *bytes, struct kerr *err);
