/*
 * manifests/yaml_scalar — private to manifests/yaml*.c: the YAML 1.2 core
 * schema for plain scalars, and the YAML 1.1 readings that differ from it.
 * Shared by the parser (to resolve and warn) and the emitter (to know when a
 * string must be quoted). Pure functions, thread-safe.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Resolves the text s[0..n) of an untagged plain scalar by the core schema.
 * Returns 0 and an owned value in *out (null, true/false, integer, real, or
 * a string), or -ERANGE for an integer beyond int64 or a float beyond double,
 * -EDOM for .inf/.nan (JSON has no such numbers); *why then names the
 * problem (static text). */
int yaml_scalar_resolve(const char *s, size_t n, json_t **out, const char **why);

/* Resolves s[0..n) under an explicit tag, one of "str", "int", "float",
 * "bool", "null" (the part after "tag:yaml.org,2002:"). Returns 0 and an
 * owned value, or -EINVAL (the text is not of that type), -ERANGE, -EDOM,
 * with *why set (static text). */
int yaml_scalar_resolve_tagged(const char *tag, const char *s, size_t n, json_t **out,
                               const char **why);

/* If a YAML 1.1 reader (kubectl, PyYAML) would read the plain scalar
 * s[0..n) differently from YAML 1.2, an owned warning message without
 * position ("\"yes\" is a string in YAML 1.2 but a boolean in YAML 1.1 ...");
 * else NULL. */
char *yaml_scalar_warning_11(const char *s, size_t n);

/* True when the plain scalar s[0..n) would not be read back as that string
 * by a YAML 1.2 or a YAML 1.1 reader (null, bool, number-like, .inf, ...).
 * Conservative: anything that merely looks numeric counts. */
bool yaml_scalar_is_ambiguous(const char *s, size_t n);
