/*
 * api/schema — PRIVATE to the api library (validate.c and schema.c): the
 * shape of the static schema tables and the validation context the custom
 * checks report into. Other libraries use api/validate.h.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/kind.h"

enum vtype {
	VT_STRING,
	VT_INT,
	VT_BOOL,
	VT_QUANTITY,
	VT_ENUM,
	VT_OBJECT,         /* fields: the known keys */
	VT_ARRAY,          /* item: the element's schema */
	VT_STRMAP,         /* object of string values */
	VT_ANY,            /* any JSON value */
	VT_ANY_OBJECT,     /* any JSON object */
	VT_TIME,           /* RFC 3339 UTC string */
	VT_INT_OR_PERCENT, /* integer >= 0 or "N%" */
};

#define VF_REQUIRED 1u
#define VF_MIN      2u /* VT_INT: min applies */
#define VF_MAX      4u /* VT_INT: max applies */
#define VF_NONEMPTY 8u /* strings, arrays and maps: not empty */

struct vctx;
typedef void (*vcheck_fn)(struct vctx *c, json_t *v, const char *path);

struct vfield {
	const char *name;
	enum vtype type;
	unsigned flags;
	const struct vfield *fields; /* VT_OBJECT: terminated by {NULL} */
	const struct vfield *item;   /* VT_ARRAY */
	const char *const *enums;    /* VT_ENUM: NULL-terminated */
	int64_t min, max;            /* VT_INT with VF_MIN / VF_MAX */
	size_t max_len;              /* strings: bytes; arrays, maps: entries; 0: none */
	vcheck_fn check;             /* runs when the value has the right JSON type */
};

/* The top-level schema of a kind: {apiVersion, kind, metadata, spec, status}
 * or Event's own top-level fields. Terminated by {NULL}. */
const struct vfield *api_schema_top(const struct api_kind *k);
/* The status schema (a VT_OBJECT field) of a kind, or NULL (Event). */
const struct vfield *api_schema_status(const struct api_kind *k);

/* Reports one cause; fmt is the message without the path. */
void vc_cause(struct vctx *c, const char *path, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The kind being validated. */
const struct api_kind *vc_kind(const struct vctx *c);
/* A short rendering of v for messages ("\"yes\"", "3", "{...}"). Owned. */
char *vc_render(json_t *v);

/* Kubernetes cause reasons. */
#define R_REQUIRED    "FieldValueRequired"
#define R_INVALID     "FieldValueInvalid"
#define R_TYPE        "FieldValueTypeInvalid"
#define R_UNSUPPORTED "FieldValueNotSupported"
#define R_UNKNOWN     "FieldValueUnknown"
#define R_DUPLICATE   "FieldValueDuplicate"
#define R_FORBIDDEN   "FieldValueForbidden"
#define R_TOOLONG     "FieldValueTooLong"
#define R_TOOMANY     "FieldValueTooMany"
