/* Unit tests: which spec a container runs (src/agent/agent_spec.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent_spec.h"

static char *hash_of(const char *json)
{
	json_t *spec = json_loads(json, 0, NULL);
	assert_non_null(spec);
	char *h = agent_spec_hash(spec);
	json_decref(spec);
	return h;
}

#define BASE                                                                                       \
	"\"image\": \"keel/busybox:latest\", \"command\": [\"sh\", \"-c\", \"echo version-one\"]," \
	" \"env\": [{\"name\": \"A\", \"value\": \"1\"}], \"restartPolicy\": \"Always\""

static void test_shape_and_stability(void **state)
{
	(void)state;
	char *a = hash_of("{" BASE "}");
	assert_int_equal(strlen(a), 16);
	assert_int_equal(strspn(a, "0123456789abcdef"), 16);
	/* key order is not a change */
	char *b = hash_of("{\"restartPolicy\": \"Always\", \"env\": [{\"value\": \"1\", \"name\": "
	                  "\"A\"}], \"command\": [\"sh\", \"-c\", \"echo version-one\"], "
	                  "\"image\": \"keel/busybox:latest\"}");
	assert_string_equal(a, b);
	char *n = agent_spec_hash(NULL);
	char *e = hash_of("{}");
	assert_string_equal(n, e);
	free(a), free(b), free(n), free(e);
}

/* Each field the runtime bakes into a container changes the hash. */
static void test_container_fields_change_it(void **state)
{
	(void)state;
	char *base = hash_of("{" BASE "}");
	const char *edits[] = {
	    "{\"image\": \"keel/busybox:2\", \"command\": [\"sh\", \"-c\", \"echo version-one\"],"
	    " \"env\": [{\"name\": \"A\", \"value\": \"1\"}]}",
	    "{\"image\": \"keel/busybox:latest\", \"command\": [\"sh\", \"-c\", \"echo "
	    "version-two\"], \"env\": [{\"name\": \"A\", \"value\": \"1\"}]}",
	    "{" BASE ", \"args\": [\"x\"]}",
	    "{\"image\": \"keel/busybox:latest\", \"command\": [\"sh\", \"-c\", \"echo "
	    "version-one\"], \"env\": [{\"name\": \"A\", \"value\": \"2\"}]}",
	    "{" BASE ", \"resources\": {\"limits\": {\"memory\": \"64Mi\"}}}",
	    "{" BASE ", \"ports\": [{\"containerPort\": 80}]}",
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *h = hash_of(edits[i]);
		assert_string_not_equal(h, base);
		free(h);
	}
	free(base);
}

/* What the agent applies to a running container, or what only the
 * scheduler reads, does not restart it. */
static void test_other_fields_do_not(void **state)
{
	(void)state;
	char *base = hash_of("{" BASE "}");
	const char *edits[] = {
	    "{\"image\": \"keel/busybox:latest\", \"command\": [\"sh\", \"-c\", \"echo "
	    "version-one\"], \"env\": [{\"name\": \"A\", \"value\": \"1\"}], \"restartPolicy\": "
	    "\"Never\"}",
	    "{" BASE ", \"nodeName\": \"n1\", \"nodeSelector\": {\"zone\": \"a\"}}",
	    "{" BASE ", \"terminationGracePeriodSeconds\": 5}",
	    "{" BASE ", \"healthCheck\": {\"exec\": {\"command\": [\"true\"]}}}",
	    "{" BASE ", \"args\": null}",
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *h = hash_of(edits[i]);
		assert_string_equal(h, base);
		free(h);
	}
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shape_and_stability),
	    cmocka_unit_test(test_container_fields_change_it),
	    cmocka_unit_test(test_other_fields_do_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
