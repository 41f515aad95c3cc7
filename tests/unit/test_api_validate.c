/* Unit tests for api/validate: strict schema validation of every kind, the
 * messages users see for the mistakes they make, and defaulting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/kind.h"
#include "api/validate.h"
#include "common/kerr.h"
#include "common/util.h"

/* JSON with ' for " so the cases stay readable. Owned. */
static json_t *J(const char *text)
{
	char *s = xstrdup(text);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	if (!j)
		fail_msg("bad test JSON: %s: %s", je.text, s);
	free(s);
	return j;
}

static const struct api_kind *K(const char *kind)
{
	return api_kind_by_kind(kind);
}

/* Validates text as kind; returns the error (caller clears). */
static struct kerr check(const char *kind, const char *text)
{
	struct kerr err = KERR_INIT;
	json_t *o = J(text);
	int r = api_validate(K(kind), o, &err);
	assert_int_equal(r, err.code ? -EINVAL : 0);
	json_decref(o);
	return err;
}

static void expect_ok(const char *kind, const char *text)
{
	struct kerr err = check(kind, text);
	if (err.code)
		fail_msg("unexpected error: %s", kerr_msg(&err));
}

/* The cause for field, which must exist, and whose message must contain msg. */
static void expect_cause(const struct kerr *err, const char *field, const char *reason,
                         const char *msg)
{
	size_t i;
	json_t *c;
	json_array_foreach(err->causes, i, c)
	{
		if (!streq(json_string_value(json_object_get(c, "field")), field))
			continue;
		if (reason)
			assert_string_equal(json_string_value(json_object_get(c, "reason")),
			                    reason);
		const char *m = json_string_value(json_object_get(c, "message"));
		if (msg && !strstr(m, msg))
			fail_msg("%s: message \"%s\" lacks \"%s\"", field, m, msg);
		return;
	}
	fail_msg("no cause for %s in: %s", field, kerr_msg(err));
}

static void expect_one(const char *kind, const char *text, const char *field, const char *reason,
                       const char *msg)
{
	struct kerr err = check(kind, text);
	if (err.code != EINVAL)
		fail_msg("expected an error at %s", field);
	expect_cause(&err, field, reason, msg);
	if (json_array_size(err.causes) != 1)
		fail_msg("expected one cause, got: %s", kerr_msg(&err));
	kerr_clear(&err);
}

#define TASK_HEAD   "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'web'},"
#define DEPLOY_HEAD "{'apiVersion':'keel/v1','kind':'Deployment','metadata':{'name':'web'},"
#define TMPL        "'template':{'metadata':{'labels':{'app':'web'}},'spec':{'image':'nginx'}}"

static void test_task_valid(void **state)
{
	(void)state;
	expect_ok("Task", TASK_HEAD "'spec':{'image':'busybox'}}");
	expect_ok(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'web-1','namespace':'prod',"
	    "'labels':{'app':'web','app.kubernetes.io/name':'web'},'annotations':{'note':'hi'},"
	    "'uid':'0b6d','resourceVersion':'12','generation':2,'creationTimestamp':'2024-05-01T12:"
	    "00:00Z',"
	    "'finalizers':['keel.dev/protect'],'managedFields':[{'manager':'keel-apply'}],"
	    "'ownerReferences':[{'apiVersion':'keel/v1','kind':'Deployment','name':'web','uid':'u',"
	    "'controller':true,'blockOwnerDeletion':true}]},"
	    "'spec':{'image':'nginx:1.25','command':['/bin/sh','-c'],'args':['echo hi'],"
	    "'env':[{'name':'PORT','value':'80'},{'name':'my.var-x'}],"
	    "'resources':{'requests':{'cpu':'250m','memory':'64Mi'},'limits':{'cpu':1,'memory':'"
	    "128Mi'}},"
	    "'restartPolicy':'OnFailure','nodeSelector':{'disk':'ssd'},'nodeName':'node-1.example',"
	    "'ports':[{'name':'http','containerPort':80,'hostPort':8080,'protocol':'TCP'},"
	    "{'containerPort':80,'protocol':'UDP'}],"
	    "'healthCheck':{'httpGet':{'path':'/"
	    "healthz','port':80},'periodSeconds':5,'timeoutSeconds':2,"
	    "'failureThreshold':3,'initialDelaySeconds':0},'terminationGracePeriodSeconds':0},"
	    "'status':{'phase':'Running','nodeName':'node-1','containerID':'abc','restartCount':2,"
	    "'startedAt':'2024-05-01T12:00:00Z','exitCode':0,'ready':true,"
	    "'lastState':{'exitCode':137,'reason':'OOMKilled','finishedAt':'2024-05-01T11:00:00Z',"
	    "'output':'killed'},'conditions':[{'type':'Ready','status':'True'}]}}");
}

static void test_task_required_image(void **state)
{
	(void)state;
	struct kerr err = check("Task", TASK_HEAD "'spec':{}}");
	assert_int_equal(err.code, EINVAL);
	assert_string_equal(err.msg, "Task \"web\" is invalid: spec.image: Required value");
	expect_cause(&err, "spec.image", "FieldValueRequired", "Required value");
	kerr_clear(&err);
	expect_one("Task", TASK_HEAD "'spec':{'image':''}}", "spec.image", "FieldValueRequired",
	           "must not be empty");
	expect_one("Task", "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'web'}}",
	           "spec", "FieldValueRequired", "Required value");
}

static void test_unknown_fields(void **state)
{
	(void)state;
	struct kerr err = check("Deployment", DEPLOY_HEAD "'spec':{'replica':3," TMPL "}}");
	assert_int_equal(err.code, EINVAL);
	expect_cause(&err, "spec.replica", "FieldValueUnknown",
	             "unknown field, did you mean spec.replicas?");
	assert_string_equal(err.msg, "Deployment \"web\" is invalid: spec.replica: unknown field, "
	                             "did you mean spec.replicas?");
	kerr_clear(&err);
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','enviroment':[]}}", "spec.enviroment",
	           "FieldValueUnknown", "unknown field");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','restartPolicyy':'Never'}}",
	           "spec.restartPolicyy", NULL, "did you mean spec.restartPolicy?");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x'},'specs':{}}", "specs", NULL,
	           "did you mean spec?");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','zzzzzz':1}}", "spec.zzzzzz", NULL,
	           "unknown field (known fields here: image, command");
	expect_one(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'web','generateName':'w-'},"
	    "'spec':{'image':'x'}}",
	    "metadata.generateName", "FieldValueUnknown", "unknown field");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','env':[{'name':'A','valu':'1'}]}}",
	           "spec.env[0].valu", NULL, "did you mean spec.env[0].value?");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','resources':{'limits':{'cpus':'1'}}}}",
	           "spec.resources.limits.cpus", NULL, "did you mean spec.resources.limits.cpu?");
}

static void test_types(void **state)
{
	(void)state;
	expect_one("Deployment", DEPLOY_HEAD "'spec':{'replicas':'3'," TMPL "}}", "spec.replicas",
	           "FieldValueTypeInvalid", "must be an integer, got the string \"3\"");
	expect_one("Deployment", DEPLOY_HEAD "'spec':{'replicas':1.5," TMPL "}}", "spec.replicas",
	           NULL, "must be an integer, got the number 1.5");
	expect_one("Task", TASK_HEAD "'spec':{'image':['nginx']}}", "spec.image", NULL,
	           "must be a string, got an array");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','command':'sleep 10'}}", "spec.command",
	           NULL, "must be an array of strings, got the string \"sleep 10\"");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','args':['a',3]}}", "spec.args[1]", NULL,
	           "must be a string, got the integer 3");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','env':{'A':'1'}}}", "spec.env", NULL,
	           "must be an array, got an object");
	expect_one("Task", TASK_HEAD "'spec':'nginx'}", "spec", NULL,
	           "must be an object, got the string");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','nodeSelector':{'disk':true}}}",
	           "spec.nodeSelector.disk", NULL, "must be a string, got the boolean true");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','resources':{'requests':{'cpu':'12x'}}}}",
	           "spec.resources.requests.cpu", "FieldValueInvalid", "invalid quantity \"12x\"");
	expect_one("Task",
	           TASK_HEAD "'spec':{'image':'x','resources':{'requests':{'memory':'1GB'}}}}",
	           "spec.resources.requests.memory", NULL,
	           "write Gi for powers of 1024 or G for powers of 1000");
	/* null counts as absent: `image:` with no value in YAML. */
	expect_one("Task", TASK_HEAD "'spec':{'image':null,'command':null}}", "spec.image",
	           "FieldValueRequired", "Required value");
}

static void test_yaml11_booleans(void **state)
{
	(void)state;
	static const char *const words[] = {"yes", "no", "on", "off", "y", "n", "Yes", "NO", "Off"};
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		char *text =
		    xasprintf("{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1'},"
		              "'spec':{'unschedulable':'%s'}}",
		              words[i]);
		char *msg = xasprintf("must be a boolean, got the string \"%s\" (YAML 1.2 reads %s "
		                      "as a string; write "
		                      "true or false)",
		                      words[i], words[i]);
		expect_one("Node", text, "spec.unschedulable", "FieldValueTypeInvalid", msg);
		free(text);
		free(msg);
	}
	struct kerr err =
	    check("Node", "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1'},"
	                  "'spec':{'unschedulable':'yes'}}");
	assert_string_equal(
	    err.msg,
	    "Node \"n1\" is invalid: spec.unschedulable: must be a boolean, got the string "
	    "\"yes\" (YAML 1.2 reads yes as a string; write true or false)");
	kerr_clear(&err);
	expect_one("Node",
	           "{'apiVersion':'keel/"
	           "v1','kind':'Node','metadata':{'name':'n1'},'spec':{'unschedulable':'true'}}",
	           "spec.unschedulable", NULL, "write true without quotes");
	expect_one("Node",
	           "{'apiVersion':'keel/"
	           "v1','kind':'Node','metadata':{'name':'n1'},'spec':{'unschedulable':1}}",
	           "spec.unschedulable", NULL, "must be a boolean, got the integer 1");
	expect_ok("Node",
	          "{'apiVersion':'keel/"
	          "v1','kind':'Node','metadata':{'name':'n1'},'spec':{'unschedulable':false}}");
}

static void test_envelope(void **state)
{
	(void)state;
	expect_one(
	    "Task",
	    "{'apiVersion':'v1','kind':'Task','metadata':{'name':'web'},'spec':{'image':'x'}}",
	    "apiVersion", "FieldValueNotSupported",
	    "Unsupported value: \"v1\": supported values: \"keel/v1\"");
	expect_one("Task",
	           "{'apiVersion':'keel/"
	           "v1','kind':'Deployment','metadata':{'name':'web'},'spec':{'image':'x'}}",
	           "kind", NULL, "must be \"Task\"");
	expect_one("Task", "{'kind':'Task','metadata':{'name':'web'},'spec':{'image':'x'}}",
	           "apiVersion", "FieldValueRequired", "Required value");
	expect_one("Task", "{'apiVersion':'keel/v1','kind':'Task','spec':{'image':'x'}}",
	           "metadata", "FieldValueRequired", NULL);
	struct kerr err = check(
	    "Task", "{'apiVersion':'keel/v1','kind':'Task','metadata':{},'spec':{'image':'x'}}");
	assert_string_equal(err.msg, "Task is invalid: metadata.name: Required value");
	kerr_clear(&err);
	json_t *arr = json_array();
	assert_int_equal(api_validate(K("Task"), arr, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "must be a JSON object"));
	kerr_clear(&err);
	json_decref(arr);
}

static void test_names(void **state)
{
	(void)state;
	expect_one("Task",
	           "{'apiVersion':'keel/"
	           "v1','kind':'Task','metadata':{'name':'Web_1'},'spec':{'image':'x'}}",
	           "metadata.name", "FieldValueInvalid",
	           "Invalid value: \"Web_1\": must be a lowercase RFC 1123 subdomain");
	expect_ok("Task", "{'apiVersion':'keel/"
	                  "v1','kind':'Task','metadata':{'name':'web.v1'},'spec':{'image':'x'}}");
	expect_one("Namespace",
	           "{'apiVersion':'keel/v1','kind':'Namespace','metadata':{'name':'team.a'}}",
	           "metadata.name", NULL, "must be a lowercase RFC 1123 label");
	expect_ok("Namespace",
	          "{'apiVersion':'keel/v1','kind':'Namespace','metadata':{'name':'team-a'}}");
	expect_ok("Node",
	          "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'worker-1.lan'}}");
	expect_one(
	    "Node",
	    "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1','namespace':'default'}}",
	    "metadata.namespace", "FieldValueForbidden",
	    "not allowed on Node, which is cluster-scoped");
	expect_one(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','namespace':'Prod'},"
	    "'spec':{'image':'x'}}",
	    "metadata.namespace", NULL, "RFC 1123 label");
}

static void test_labels_annotations(void **state)
{
	(void)state;
	expect_one(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','labels':{'-bad':'x'}},"
	    "'spec':{'image':'x'}}",
	    "metadata.labels[-bad]", "FieldValueInvalid", "a label key must be [prefix/]name");
	expect_one(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','labels':{'app':'a b'}},"
	    "'spec':{'image':'x'}}",
	    "metadata.labels.app", NULL, "Invalid value: \"a b\": a label value must be empty");
	expect_one(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','labels':{'app':1}},"
	    "'spec':{'image':'x'}}",
	    "metadata.labels.app", "FieldValueTypeInvalid", "must be a string, got the integer 1");
	json_t *o = J(TASK_HEAD "'spec':{'image':'x'}}");
	json_t *labels = json_object();
	for (int i = 0; i < 65; i++) {
		char k[16];
		snprintf(k, sizeof k, "l%d", i);
		json_object_set_new(labels, k, json_string("v"));
	}
	json_object_set_new(json_object_get(o, "metadata"), "labels", labels);
	struct kerr err = KERR_INIT;
	assert_int_equal(api_validate(K("Task"), o, &err), -EINVAL);
	expect_cause(&err, "metadata.labels", "FieldValueTooMany", "must have at most 64 labels");
	kerr_clear(&err);
	json_object_del(json_object_get(o, "metadata"), "labels");
	char *big = xmalloc(200 * 1024);
	memset(big, 'a', 200 * 1024 - 1);
	big[200 * 1024 - 1] = '\0';
	json_object_set_new(json_object_get(o, "metadata"), "annotations",
	                    json_pack("{s:s, s:s}", "a", big, "b", big));
	free(big);
	assert_int_equal(api_validate(K("Task"), o, &err), -EINVAL);
	expect_cause(&err, "metadata.annotations", "FieldValueTooLong",
	             "must have at most 262144 bytes");
	kerr_clear(&err);
	json_decref(o);
	expect_one("Task",
	           "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','annotations':{'x/"
	           "y/z':'1'}},"
	           "'spec':{'image':'x'}}",
	           "metadata.annotations[x/y/z]", NULL, "label key");
}

static void test_server_metadata(void **state)
{
	(void)state;
	expect_one(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','ownerReferences':["
	    "{'apiVersion':'keel/v1','kind':'Deployment','name':'a','uid':'1','controller':true},"
	    "{'apiVersion':'keel/v1','kind':'Deployment','name':'b','uid':'2','controller':true}]},"
	    "'spec':{'image':'x'}}",
	    "metadata.ownerReferences", NULL, "only one reference can have controller set to true");
	expect_one(
	    "Task",
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','ownerReferences':["
	    "{'apiVersion':'keel/v1','kind':'Deployment','name':'a'}]},'spec':{'image':'x'}}",
	    "metadata.ownerReferences[0].uid", "FieldValueRequired", NULL);
	expect_one("Task",
	           "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w',"
	           "'creationTimestamp':'yesterday'},'spec':{'image':'x'}}",
	           "metadata.creationTimestamp", NULL, "must be an RFC 3339 UTC time");
	expect_one("Task",
	           "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'w','finalizers':'x'},"
	           "'spec':{'image':'x'}}",
	           "metadata.finalizers", NULL, "must be an array");
}

static void test_task_rules(void **state)
{
	(void)state;
	expect_one("Task",
	           TASK_HEAD
	           "'spec':{'image':'x','resources':{'requests':{'cpu':'2','memory':'64Mi'},"
	           "'limits':{'cpu':'1','memory':'128Mi'}}}}",
	           "spec.resources.requests.cpu", "FieldValueInvalid",
	           "Invalid value: \"2\": must be less than or equal to the cpu limit (\"1\")");
	expect_one("Task",
	           TASK_HEAD "'spec':{'image':'x','resources':{'requests':{'memory':'1Gi'},"
	                     "'limits':{'memory':'512Mi'}}}}",
	           "spec.resources.requests.memory", NULL, "memory limit");
	expect_ok(
	    "Task", TASK_HEAD
	    "'spec':{'image':'x','resources':{'requests':{'cpu':'1000m'},'limits':{'cpu':1}}}}");
	expect_one("Task",
	           TASK_HEAD "'spec':{'image':'x','env':[{'name':'A'},{'name':'B'},{'name':'A'}]}}",
	           "spec.env[2].name", "FieldValueDuplicate", "Duplicate value: \"A\"");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','env':[{'name':'1X'}]}}",
	           "spec.env[0].name", NULL, "must not start with a digit");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','env':[{'value':'1'}]}}",
	           "spec.env[0].name", "FieldValueRequired", NULL);
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','restartPolicy':'always'}}",
	           "spec.restartPolicy", "FieldValueNotSupported",
	           "Unsupported value: \"always\": supported values: \"Always\", \"OnFailure\", "
	           "\"Never\"; did you mean "
	           "\"Always\"?");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','ports':[{'containerPort':0}]}}",
	           "spec.ports[0].containerPort", NULL,
	           "Invalid value: 0: must be greater than or equal to 1");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','ports':[{'containerPort':70000}]}}",
	           "spec.ports[0].containerPort", NULL, "must be less than or equal to 65535");
	expect_one("Task",
	           TASK_HEAD
	           "'spec':{'image':'x','ports':[{'containerPort':80,'protocol':'SCTP'}]}}",
	           "spec.ports[0].protocol", NULL, "supported values: \"TCP\", \"UDP\"");
	expect_one("Task",
	           TASK_HEAD
	           "'spec':{'image':'x','ports':[{'containerPort':80},{'containerPort':80}]}}",
	           "spec.ports[1].containerPort", "FieldValueDuplicate", "80/TCP");
	expect_one("Task",
	           TASK_HEAD "'spec':{'image':'x','ports':[{'name':'http','containerPort':80},"
	                     "{'name':'http','containerPort':81}]}}",
	           "spec.ports[1].name", "FieldValueDuplicate", NULL);
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','healthCheck':{'periodSeconds':5}}}",
	           "spec.healthCheck", "FieldValueRequired",
	           "must specify one handler, httpGet or exec");
	expect_one("Task",
	           TASK_HEAD "'spec':{'image':'x','healthCheck':{'httpGet':{'port':80},'exec':{'"
	                     "command':['true']}}}}",
	           "spec.healthCheck.exec", "FieldValueForbidden", "more than one handler");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','healthCheck':{'exec':{'command':[]}}}}",
	           "spec.healthCheck.exec.command", NULL, "must not be empty");
	expect_one("Task",
	           TASK_HEAD
	           "'spec':{'image':'x','healthCheck':{'httpGet':{'path':'healthz','port':80}}}}",
	           "spec.healthCheck.httpGet.path", NULL, "must be an absolute path");
	expect_one("Task",
	           TASK_HEAD
	           "'spec':{'image':'x','healthCheck':{'httpGet':{'port':80},'periodSeconds':0}}}",
	           "spec.healthCheck.periodSeconds", NULL, "greater than or equal to 1");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','terminationGracePeriodSeconds':-1}}",
	           "spec.terminationGracePeriodSeconds", NULL, "greater than or equal to 0");
	expect_one("Task", TASK_HEAD "'spec':{'image':'x','nodeName':'Node_1'}}", "spec.nodeName",
	           NULL, "RFC 1123 subdomain");
}

static void test_task_status(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	json_t *st = J("{'phase':'Runing'}");
	assert_int_equal(api_validate_status(K("Task"), st, &err), -EINVAL);
	expect_cause(&err, "status.phase", "FieldValueNotSupported", "did you mean \"Running\"?");
	kerr_clear(&err);
	json_decref(st);
	st = J("{'phase':'Failed','exitCode':1,'finishedAt':'2024-13-01T00:00:00Z','restartCount':-"
	       "1}");
	assert_int_equal(api_validate_status(K("Task"), st, &err), -EINVAL);
	expect_cause(&err, "status.finishedAt", "FieldValueInvalid", "RFC 3339");
	expect_cause(&err, "status.restartCount", NULL, "greater than or equal to 0");
	assert_int_equal(json_array_size(err.causes), 2);
	assert_non_null(strstr(err.msg, "; status.restartCount"));
	kerr_clear(&err);
	json_decref(st);
	st = J("{'phase':'Running','conditions':[{'type':'Ready'}],'lastState':{'exitCode':'1'}}");
	assert_int_equal(api_validate_status(K("Task"), st, &err), -EINVAL);
	expect_cause(&err, "status.conditions[0].status", "FieldValueRequired", NULL);
	expect_cause(&err, "status.lastState.exitCode", "FieldValueTypeInvalid", NULL);
	kerr_clear(&err);
	json_decref(st);
	st = J("{'phase':'Succeeded','exitCode':0,'finishedAt':'2024-05-01T00:00:00Z'}");
	assert_int_equal(api_validate_status(K("Task"), st, &err), 0);
	json_decref(st);
	st = J("{}");
	assert_int_equal(api_validate_status(K("Event"), st, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "Event has no status"));
	kerr_clear(&err);
	json_decref(st);
	st = J("[]");
	assert_int_equal(api_validate_status(K("Task"), st, &err), -EINVAL);
	expect_cause(&err, "status", NULL, "must be an object");
	kerr_clear(&err);
	json_decref(st);
	/* status is also validated as part of the whole object */
	expect_one("Task", TASK_HEAD "'spec':{'image':'x'},'status':{'ready':'yes'}}",
	           "status.ready", NULL, "YAML 1.2 reads yes as a string");
}

static void test_deployment(void **state)
{
	(void)state;
	expect_ok("Deployment", DEPLOY_HEAD "'spec':{" TMPL "}}");
	expect_ok(
	    "Deployment", DEPLOY_HEAD
	    "'spec':{'replicas':3,'selector':{'matchLabels':{'app':'web'}},"
	    "'strategy':{'type':'RollingUpdate','rollingUpdate':{'maxSurge':1,'maxUnavailable':'0%'"
	    "}},"
	    "'revisionHistoryLimit':5,'progressDeadlineSeconds':300,'minReadySeconds':10,'paused':"
	    "false,"
	    "'template':{'metadata':{'labels':{'app':'web','tier':'fe'}},'spec':{'image':'nginx'}}}"
	    ","
	    "'status':{'observedGeneration':2,'replicas':3,'readyReplicas':3,'updatedReplicas':3,"
	    "'availableReplicas':3,'unavailableReplicas':0,'conditions':[{'type':'Available',"
	    "'status':'True','reason':'MinimumReplicasAvailable','lastUpdateTime':'2024-05-01T00:"
	    "00:00Z',"
	    "'lastTransitionTime':'2024-05-01T00:00:00Z'}]}}");
	expect_ok("Deployment", DEPLOY_HEAD
	          "'spec':{'selector':{'matchExpressions':[{'key':'app','operator':'In',"
	          "'values':['web','api']}]}," TMPL "}}");
	struct kerr err = check("Deployment", DEPLOY_HEAD
	                        "'spec':{'selector':{'matchLabels':{'app':'api'}}," TMPL "}}");
	expect_cause(&err, "spec.template.metadata.labels", "FieldValueInvalid",
	             "Invalid value: {\"app\":\"web\"}: selector does not match template labels "
	             "(selector: app=api)");
	assert_int_equal(json_array_size(err.causes), 1);
	kerr_clear(&err);
	expect_one("Deployment", DEPLOY_HEAD "'spec':{'selector':{}," TMPL "}}", "spec.selector",
	           NULL, "empty selector is invalid for a Deployment");
	expect_one("Deployment",
	           DEPLOY_HEAD
	           "'spec':{'selector':{'matchExpressions':[{'key':'app','operator':'In'}]}," TMPL
	           "}}",
	           "spec.selector.matchExpressions[0].values", "FieldValueRequired",
	           "when operator is In");
	expect_one("Deployment",
	           DEPLOY_HEAD
	           "'spec':{'selector':{'matchExpressions':[{'key':'app','operator':'Is',"
	           "'values':['web']}]}," TMPL "}}",
	           "spec.selector.matchExpressions[0].operator", "FieldValueNotSupported", NULL);
	expect_one("Deployment", DEPLOY_HEAD "'spec':{'replicas':-1," TMPL "}}", "spec.replicas",
	           NULL, "Invalid value: -1: must be greater than or equal to 0");
	expect_one("Deployment", DEPLOY_HEAD "'spec':{}}", "spec.template", "FieldValueRequired",
	           NULL);
	expect_one("Deployment",
	           DEPLOY_HEAD
	           "'spec':{'template':{'metadata':{'labels':{}},'spec':{'image':'x'}}}}",
	           "spec.template.metadata.labels", "FieldValueRequired", "must not be empty");
	expect_one("Deployment",
	           DEPLOY_HEAD "'spec':{'template':{'metadata':{},'spec':{'image':'x'}}}}",
	           "spec.template.metadata.labels", "FieldValueRequired", NULL);
	expect_one("Deployment",
	           DEPLOY_HEAD
	           "'spec':{'template':{'metadata':{'labels':{'app':'web'}},'spec':{}}}}",
	           "spec.template.spec.image", "FieldValueRequired", NULL);
	expect_one("Deployment",
	           DEPLOY_HEAD "'spec':{'template':{'metadata':{'labels':{'app':'web'}},"
	                       "'spec':{'image':'x','restartPolicy':'Sometimes'}}}}",
	           "spec.template.spec.restartPolicy", "FieldValueNotSupported", NULL);
	expect_one(
	    "Deployment",
	    DEPLOY_HEAD
	    "'spec':{'strategy':{'rollingUpdate':{'maxSurge':0,'maxUnavailable':'0%'}}," TMPL "}}",
	    "spec.strategy.rollingUpdate.maxUnavailable", NULL, "may not be 0 when maxSurge is 0");
	expect_one("Deployment",
	           DEPLOY_HEAD "'spec':{'strategy':{'rollingUpdate':{'maxSurge':'lots'}}," TMPL
	                       "}}",
	           "spec.strategy.rollingUpdate.maxSurge", NULL,
	           "must be an integer or a percentage such as \"25%\"");
	expect_one(
	    "Deployment",
	    DEPLOY_HEAD "'spec':{'strategy':{'rollingUpdate':{'maxUnavailable':'150%'}}," TMPL "}}",
	    "spec.strategy.rollingUpdate.maxUnavailable", NULL, "must not be greater than 100%");
	expect_one("Deployment",
	           DEPLOY_HEAD
	           "'spec':{'strategy':{'type':'Recreate','rollingUpdate':{'maxSurge':1}}," TMPL
	           "}}",
	           "spec.strategy.rollingUpdate", "FieldValueForbidden",
	           "when strategy type is 'Recreate'");
	expect_one("Deployment", DEPLOY_HEAD "'spec':{'strategy':{'type':'BlueGreen'}," TMPL "}}",
	           "spec.strategy.type", NULL, "supported values: \"RollingUpdate\", \"Recreate\"");
	expect_one("Deployment",
	           DEPLOY_HEAD "'spec':{'progressDeadlineSeconds':10,'minReadySeconds':10," TMPL
	                       "}}",
	           "spec.progressDeadlineSeconds", NULL, "must be greater than minReadySeconds");
	expect_one("Deployment", DEPLOY_HEAD "'spec':{'paused':'no'," TMPL "}}", "spec.paused",
	           NULL, "YAML 1.2 reads no as a string");
	/* A Deployment keeps its Tasks running: a template that lets them end
	 * would be replaced in a loop (Kubernetes rejects it too). */
	expect_ok("Deployment", DEPLOY_HEAD "'spec':{'template':{'metadata':{'labels':{'app':'web'}},"
	                                    "'spec':{'image':'x','restartPolicy':'Always'}}}}");
	expect_one("Deployment",
	           DEPLOY_HEAD "'spec':{'template':{'metadata':{'labels':{'app':'web'}},"
	                       "'spec':{'image':'x','restartPolicy':'Never'}}}}",
	           "spec.template.spec.restartPolicy", "FieldValueNotSupported",
	           "Unsupported value: \"Never\": supported values: \"Always\"");
	expect_one("Deployment",
	           DEPLOY_HEAD "'spec':{'template':{'metadata':{'labels':{'app':'web'}},"
	                       "'spec':{'image':'x','restartPolicy':'OnFailure'}}}}",
	           "spec.template.spec.restartPolicy", "FieldValueNotSupported",
	           "supported values: \"Always\"");
	/* nodeName is the scheduler's to set: a template may not pin replicas. */
	expect_one("Deployment",
	           DEPLOY_HEAD "'spec':{'template':{'metadata':{'labels':{'app':'web'}},"
	                       "'spec':{'image':'x','nodeName':'n1'}}}}",
	           "spec.template.spec.nodeName", "FieldValueForbidden", "use nodeSelector");
	/* a Task may still use both */
	expect_ok("Task", TASK_HEAD "'spec':{'image':'x','restartPolicy':'Never','nodeName':'n1'}}");
}

static void test_node_namespace(void **state)
{
	(void)state;
	expect_ok(
	    "Node",
	    "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1','labels':{'zone':'a'}},"
	    "'spec':{'unschedulable':true,'taints':[{'key':'gpu','value':'yes','effect':'"
	    "NoSchedule'}]},"
	    "'status':{'capacity':{'cpu':4,'memory':'8Gi'},'allocatable':{'cpu':'3500m','memory':"
	    "8000000000},"
	    "'usage':{'cpu':'250m','memory':'104857600'},'address':'10.0.0.5',"
	    "'heartbeatTime':'2024-05-01T12:00:00Z','logEndpoint':'http://10.0.0.5:7701',"
	    "'nodeInfo':{'runtime':'docker','runtimeVersion':'24.0','keelVersion':'0.1.0','os':'"
	    "linux',"
	    "'arch':'amd64','hostname':'n1'},'conditions':[{'type':'Ready','status':'Unknown',"
	    "'lastHeartbeatTime':'2024-05-01T12:00:00Z'}]}}");
	expect_one("Node",
	           "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1'},"
	           "'status':{'capacity':{'cpu':'four'}}}",
	           "status.capacity.cpu", NULL, "invalid quantity \"four\"");
	expect_one("Node",
	           "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1'},"
	           "'spec':{'taints':[{'key':'gpu','effect':'NoPlacement'}]}}",
	           "spec.taints[0].effect", "FieldValueNotSupported", NULL);
	expect_one("Node",
	           "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1'},"
	           "'status':{'logEndpoint':'10.0.0.5:7701'}}",
	           "status.logEndpoint", NULL, "http:// or https:// URL");
	expect_one("Node",
	           "{'apiVersion':'keel/"
	           "v1','kind':'Node','metadata':{'name':'n1'},'spec':{'podCIDR':'x'}}",
	           "spec.podCIDR", "FieldValueUnknown", NULL);
	expect_ok("Namespace",
	          "{'apiVersion':'keel/v1','kind':'Namespace','metadata':{'name':'prod'},"
	          "'spec':{'finalizers':['kubernetes']},'status':{'phase':'Active'}}");
	expect_one("Namespace",
	           "{'apiVersion':'keel/v1','kind':'Namespace','metadata':{'name':'prod'},"
	           "'status':{'phase':'Gone'}}",
	           "status.phase", NULL, "supported values: \"Active\", \"Terminating\"");
}

#define EVENT_HEAD                                                                                 \
	"{'apiVersion':'keel/"                                                                     \
	"v1','kind':'Event','metadata':{'name':'web.17a','namespace':'default'},"

static void test_event(void **state)
{
	(void)state;
	expect_ok("Event", EVENT_HEAD
	          "'involvedObject':{'kind':'Task','name':'web','namespace':'default','uid':'u'},"
	          "'reason':'FailedScheduling','message':'0/3 nodes fit: 2 insufficient memory, 1 "
	          "not ready',"
	          "'type':'Warning','count':3,'firstTimestamp':'2024-05-01T12:00:00Z',"
	          "'lastTimestamp':'2024-05-01T12:05:00Z','source':{'component':'scheduler'},"
	          "'reportingComponent':'keel-scheduler'}");
	struct kerr err = check("Event", EVENT_HEAD "'spec':{}}");
	expect_cause(&err, "spec", "FieldValueUnknown", NULL);
	expect_cause(&err, "involvedObject", "FieldValueRequired", NULL);
	expect_cause(&err, "reason", "FieldValueRequired", NULL);
	expect_cause(&err, "message", "FieldValueRequired", NULL);
	assert_int_equal(json_array_size(err.causes), 4);
	assert_string_equal(
	    err.msg,
	    "Event \"web.17a\" is invalid: spec: unknown field (known fields here: apiVersion, "
	    "kind, metadata, involvedObject, reason, message, type, count, firstTimestamp, "
	    "lastTimestamp, source, reportingComponent, reportingInstance, action); "
	    "involvedObject: Required value; reason: Required value; message: Required value");
	kerr_clear(&err);
	expect_one("Event",
	           EVENT_HEAD
	           "'involvedObject':{'kind':'Task','name':'web'},'reason':'X','message':'m',"
	           "'type':'Error'}",
	           "type", NULL, "supported values: \"Normal\", \"Warning\"");
	expect_one("Event",
	           EVENT_HEAD
	           "'involvedObject':{'kind':'Task','name':'web'},'reason':'X','message':'m',"
	           "'count':0}",
	           "count", NULL, "greater than or equal to 1");
	expect_one("Event",
	           EVENT_HEAD "'involvedObject':{'kind':'Task'},'reason':'X','message':'m'}",
	           "involvedObject.name", "FieldValueRequired", NULL);
	expect_one("Event",
	           EVENT_HEAD
	           "'involvedObject':{'kind':'Task','name':'web'},'reason':'X','message':'m',"
	           "'status':{}}",
	           "status", "FieldValueUnknown", NULL);
}

static void test_many_causes(void **state)
{
	(void)state;
	json_t *o = J(TASK_HEAD "'spec':{'image':'x'}}");
	json_t *spec = json_object_get(o, "spec");
	for (int i = 0; i < 15; i++) {
		char k[16];
		snprintf(k, sizeof k, "bogus%d", i);
		json_object_set_new(spec, k, json_true());
	}
	struct kerr err = KERR_INIT;
	assert_int_equal(api_validate(K("Task"), o, &err), -EINVAL);
	assert_int_equal(json_array_size(err.causes), 15);
	assert_non_null(strstr(err.msg, ", and 5 more"));
	assert_true(strstartswith(err.msg, "Task \"web\" is invalid: spec.bogus0: unknown field"));
	kerr_clear(&err);
	/* err may be NULL */
	assert_int_equal(api_validate(K("Task"), o, NULL), -EINVAL);
	json_decref(o);
}

static void test_defaults(void **state)
{
	(void)state;
	json_t *t =
	    J(TASK_HEAD "'spec':{'image':'x','resources':{'limits':{'cpu':'1','memory':'1Gi'},"
	                "'requests':{'cpu':'500m'}},'ports':[{'containerPort':80}],"
	                "'healthCheck':{'httpGet':{'port':80}}}}");
	api_default(K("Task"), t);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(t, "metadata"), "namespace")),
	    "default");
	json_t *spec = json_object_get(t, "spec");
	assert_string_equal(json_string_value(json_object_get(spec, "restartPolicy")), "Always");
	assert_int_equal(json_integer_value(json_object_get(spec, "terminationGracePeriodSeconds")),
	                 30);
	json_t *req = json_object_get(json_object_get(spec, "resources"), "requests");
	assert_string_equal(json_string_value(json_object_get(req, "cpu")), "500m"); /* kept */
	assert_string_equal(json_string_value(json_object_get(req, "memory")),
	                    "1Gi"); /* from limits */
	json_t *port = json_array_get(json_object_get(spec, "ports"), 0);
	assert_string_equal(json_string_value(json_object_get(port, "protocol")), "TCP");
	json_t *hc = json_object_get(spec, "healthCheck");
	assert_int_equal(json_integer_value(json_object_get(hc, "periodSeconds")), 10);
	assert_int_equal(json_integer_value(json_object_get(hc, "timeoutSeconds")), 1);
	assert_int_equal(json_integer_value(json_object_get(hc, "failureThreshold")), 3);
	assert_int_equal(json_integer_value(json_object_get(hc, "initialDelaySeconds")), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(hc, "httpGet"), "path")), "/");
	assert_int_equal(api_validate(K("Task"), t, NULL), 0);
	json_t *again = json_deep_copy(t);
	api_default(K("Task"), again);
	assert_true(json_equal(t, again)); /* defaulting twice changes nothing */
	json_decref(again);
	json_decref(t);

	json_t *d = J(DEPLOY_HEAD "'spec':{" TMPL "}}");
	api_default(K("Deployment"), d);
	spec = json_object_get(d, "spec");
	assert_int_equal(json_integer_value(json_object_get(spec, "replicas")), 1);
	assert_int_equal(json_integer_value(json_object_get(spec, "revisionHistoryLimit")), 10);
	assert_int_equal(json_integer_value(json_object_get(spec, "progressDeadlineSeconds")), 600);
	assert_int_equal(json_integer_value(json_object_get(spec, "minReadySeconds")), 0);
	json_t *want_sel = J("{'matchLabels':{'app':'web'}}");
	assert_true(json_equal(json_object_get(spec, "selector"), want_sel));
	json_decref(want_sel);
	json_t *want_strat =
	    J("{'type':'RollingUpdate','rollingUpdate':{'maxSurge':'25%','maxUnavailable':'25%'}}");
	assert_true(json_equal(json_object_get(spec, "strategy"), want_strat));
	json_decref(want_strat);
	json_t *tspec = json_object_get(json_object_get(spec, "template"), "spec");
	assert_string_equal(json_string_value(json_object_get(tspec, "restartPolicy")), "Always");
	assert_int_equal(api_validate(K("Deployment"), d, NULL), 0);
	json_decref(d);

	/* Recreate gets no rollingUpdate; a user-set replicas 0 stays 0. */
	d = J(DEPLOY_HEAD "'spec':{'replicas':0,'strategy':{'type':'Recreate'}," TMPL "}}");
	api_default(K("Deployment"), d);
	spec = json_object_get(d, "spec");
	assert_int_equal(json_integer_value(json_object_get(spec, "replicas")), 0);
	assert_null(json_object_get(json_object_get(spec, "strategy"), "rollingUpdate"));
	assert_int_equal(api_validate(K("Deployment"), d, NULL), 0);
	json_decref(d);

	json_t *n = J("{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'n1'}}");
	api_default(K("Node"), n);
	assert_null(json_object_get(json_object_get(n, "metadata"), "namespace"));
	json_decref(n);

	json_t *e = J(EVENT_HEAD
	              "'involvedObject':{'kind':'Task','name':'web'},'reason':'X','message':'m'}");
	api_default(K("Event"), e);
	assert_string_equal(json_string_value(json_object_get(e, "type")), "Normal");
	assert_int_equal(json_integer_value(json_object_get(e, "count")), 1);
	assert_int_equal(api_validate(K("Event"), e, NULL), 0);
	json_decref(e);

	/* Wrong types are left for validation to name, not crashed on. */
	json_t *bad =
	    J("{'apiVersion':'keel/"
	      "v1','kind':'Deployment','metadata':'x','spec':{'template':[],'strategy':3}}");
	api_default(K("Deployment"), bad);
	assert_int_equal(api_validate(K("Deployment"), bad, NULL), -EINVAL);
	json_decref(bad);
}

/* Update rules: a Task's nodeName once set, a Deployment's selector. */
static void expect_update(const char *kind, const char *live_text, const char *next_text,
                          const char *field, const char *msg)
{
	json_t *live = J(live_text), *next = J(next_text);
	struct kerr err = KERR_INIT;
	int r = api_validate_update(K(kind), live, next, &err);
	if (!field) {
		if (r != 0)
			fail_msg("unexpected error: %s", kerr_msg(&err));
	} else {
		assert_int_equal(r, -EINVAL);
		expect_cause(&err, field, "FieldValueInvalid", NULL);
		assert_int_equal(json_array_size(err.causes), 1);
		if (!strstr(kerr_msg(&err), msg))
			fail_msg("\"%s\" lacks \"%s\"", kerr_msg(&err), msg);
	}
	kerr_clear(&err);
	json_decref(live);
	json_decref(next);
}

static void test_update_rules(void **state)
{
	(void)state;
	/* nodeName: set when empty is fine, changed or removed once set is not */
	expect_update("Task", TASK_HEAD "'spec':{'image':'x'}}",
	              TASK_HEAD "'spec':{'image':'x','nodeName':'n1'}}", NULL, NULL);
	expect_update("Task", TASK_HEAD "'spec':{'image':'x','nodeName':'n1'}}",
	              TASK_HEAD "'spec':{'image':'y','nodeName':'n1'}}", NULL, NULL);
	expect_update("Task", TASK_HEAD "'spec':{'image':'x','nodeName':'n1'}}",
	              TASK_HEAD "'spec':{'image':'x','nodeName':'n2'}}", "spec.nodeName",
	              "Task \"web\" is invalid: spec.nodeName: field is immutable once set");
	expect_update("Task", TASK_HEAD "'spec':{'image':'x','nodeName':'n1'}}",
	              TASK_HEAD "'spec':{'image':'x'}}", "spec.nodeName",
	              "field is immutable once set");
	/* selector: the same selector (keys in another order) is fine, another is not */
	const char *sel_a = DEPLOY_HEAD "'spec':{'selector':{'matchLabels':{'app':'web','t':'a'}},"
	                                "'template':{'metadata':{'labels':{'app':'web','t':'a'}},"
	                                "'spec':{'image':'x'}}}}";
	const char *sel_a2 = DEPLOY_HEAD "'spec':{'replicas':5,'selector':{'matchLabels':{'t':'a',"
	                                 "'app':'web'}},'template':{'metadata':{'labels':{'app':"
	                                 "'web','t':'a'}},'spec':{'image':'y'}}}}";
	const char *sel_b = DEPLOY_HEAD "'spec':{'selector':{'matchLabels':{'app':'web2'}},"
	                                "'template':{'metadata':{'labels':{'app':'web2'}},"
	                                "'spec':{'image':'x'}}}}";
	expect_update("Deployment", sel_a, sel_a2, NULL, NULL);
	expect_update("Deployment", sel_a, sel_b, "spec.selector",
	              "Deployment \"web\" is invalid: spec.selector: field is immutable");
	/* other kinds have no update rules here */
	expect_update("Namespace", "{'metadata':{'name':'a'}}", "{'metadata':{'name':'a'}}", NULL,
	              NULL);
}

/* A Node named like a controller's leader Lease would have its agent
 * fight the controller for that lease. */
static void test_reserved_node_names(void **state)
{
	(void)state;
	expect_one("Node", "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'keel-gc'}}",
	           "metadata.name", "FieldValueInvalid",
	           "Invalid value: \"keel-gc\": reserved for the leader Lease of the gc controller "
	           "(Node names keel-scheduler, keel-tasks, keel-nodes and keel-gc are not allowed)");
	expect_ok("Node", "{'apiVersion':'keel/v1','kind':'Node','metadata':{'name':'keel-dev'}}");
	expect_ok("Task", TASK_HEAD "'spec':{'image':'x','nodeSelector':{'n':'keel-gc'}}}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_task_valid),      cmocka_unit_test(test_task_required_image),
	    cmocka_unit_test(test_unknown_fields),  cmocka_unit_test(test_types),
	    cmocka_unit_test(test_yaml11_booleans), cmocka_unit_test(test_envelope),
	    cmocka_unit_test(test_names),           cmocka_unit_test(test_labels_annotations),
	    cmocka_unit_test(test_server_metadata), cmocka_unit_test(test_task_rules),
	    cmocka_unit_test(test_task_status),     cmocka_unit_test(test_deployment),
	    cmocka_unit_test(test_node_namespace),  cmocka_unit_test(test_event),
	    cmocka_unit_test(test_many_causes),     cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_update_rules),
	    cmocka_unit_test(test_reserved_node_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
