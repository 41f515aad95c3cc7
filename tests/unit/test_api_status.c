/* Unit tests for api/status: the errno <-> HTTP table and Status objects. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/status.h"
#include "common/kerr.h"
#include "common/util.h"

static void test_table(void **state)
{
	(void)state;
	static const struct {
		int err, http;
		const char *reason;
	} rows[] = {
	    {EINVAL, 422, "Invalid"},
	    {EBADMSG, 400, "BadRequest"},
	    {ESTALE, 409, "Conflict"},
	    {EEXIST, 409, "AlreadyExists"},
	    {ENOENT, 404, "NotFound"},
	    {EACCES, 401, "Unauthorized"},
	    {EPERM, 403, "Forbidden"},
	    {ERANGE, 410, "Gone"},
	    {E2BIG, 413, "RequestEntityTooLarge"},
	    {ENOSPC, 507, "InsufficientStorage"},
	    {EOPNOTSUPP, 405, "MethodNotAllowed"},
	    {ETIMEDOUT, 504, "Timeout"},
	    {EBUSY, 429, "TooManyRequests"},
	    {EIO, 500, "InternalError"},
	    {ENOMEM, 500, "InternalError"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *reason = NULL;
		assert_int_equal(api_http_status(rows[i].err, &reason), rows[i].http);
		assert_string_equal(reason, rows[i].reason);
		assert_int_equal(api_http_status(-rows[i].err, NULL), rows[i].http);
	}
	assert_int_equal(api_errno_from_http(404), ENOENT);
	assert_int_equal(api_errno_from_http(409), ESTALE);
	assert_int_equal(api_errno_from_http(422), EINVAL);
	assert_int_equal(api_errno_from_http(410), ERANGE);
	assert_int_equal(api_errno_from_http(401), EACCES);
	assert_int_equal(api_errno_from_http(429), EBUSY);
	assert_int_equal(api_errno_from_http(503), EBUSY);
	assert_int_equal(api_errno_from_http(500), EIO);
	assert_int_equal(api_errno_from_http(418), EBADMSG);
	assert_int_equal(api_errno_from_http(200), 0);
}

static void test_errno_from_status(void **state)
{
	(void)state;
	json_t *exists = api_status_new(409, "AlreadyExists", "tasks \"web\" already exists", NULL,
	                                "tasks", "web");
	assert_int_equal(api_errno_from_status(exists), EEXIST);
	json_t *conflict =
	    api_status_new(409, "Conflict", "the object has been modified", NULL, NULL, NULL);
	assert_int_equal(api_errno_from_status(conflict), ESTALE);
	json_t *odd = json_pack("{s:s, s:i}", "reason", "SomethingNew", "code", 404);
	assert_int_equal(api_errno_from_status(odd), ENOENT);
	assert_int_equal(api_errno_from_status(NULL), EIO);
	json_decref(exists);
	json_decref(conflict);
	json_decref(odd);
}

static void test_status_objects(void **state)
{
	(void)state;
	json_t *causes = json_pack("[{s:s, s:s, s:s}]", "field", "spec.image", "reason",
	                           "FieldValueRequired", "message", "Required value");
	json_t *st =
	    api_status_new(422, "Invalid", "Task \"web\" is invalid", causes, "Task", "web");
	assert_string_equal(json_string_value(json_object_get(st, "kind")), "Status");
	assert_string_equal(json_string_value(json_object_get(st, "apiVersion")), "v1");
	assert_string_equal(json_string_value(json_object_get(st, "status")), "Failure");
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 422);
	assert_string_equal(json_string_value(json_object_get(st, "reason")), "Invalid");
	json_t *details = json_object_get(st, "details");
	assert_string_equal(json_string_value(json_object_get(details, "name")), "web");
	assert_string_equal(json_string_value(json_object_get(details, "kind")), "Task");
	assert_int_equal(json_array_size(json_object_get(details, "causes")), 1);
	json_decref(st);

	struct kerr err = KERR_INIT;
	kerr_set(&err, ENOENT, "tasks \"web\" not found");
	st = api_status_from_kerr(&err, "tasks", "web");
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 404);
	assert_string_equal(json_string_value(json_object_get(st, "reason")), "NotFound");
	assert_string_equal(json_string_value(json_object_get(st, "message")),
	                    "tasks \"web\" not found");
	assert_null(json_object_get(json_object_get(st, "details"), "causes"));
	json_decref(st);
	kerr_clear(&err);

	kerr_add_cause(&err, "spec.replicas", "FieldValueInvalid", "must be >= 0");
	kerr_set(&err, EINVAL, "Deployment \"web\" is invalid");
	st = api_status_from_kerr(&err, NULL, NULL);
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 422);
	assert_int_equal(json_array_size(json_object_get(json_object_get(st, "details"), "causes")),
	                 1);
	assert_int_equal(json_array_size(err.causes), 1); /* copied, not taken */
	json_decref(st);
	kerr_clear(&err);

	st = api_status_from_kerr(NULL, NULL, NULL);
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 500);
	json_decref(st);

	st = api_status_success("tasks", "web");
	assert_string_equal(json_string_value(json_object_get(st, "status")), "Success");
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 200);
	assert_null(json_object_get(st, "reason"));
	json_decref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_errno_from_status),
	    cmocka_unit_test(test_status_objects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
