/*
 * log: stderr lines "TIME LEVEL message" or {"time":..,"level":..,"msg":..}.
 * One write(2) per line keeps lines from different threads whole.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

static enum log_level min_level = LOG_INFO;
static bool as_json;

void log_set_level(enum log_level level) { min_level = level; }
void log_set_json(bool json) { as_json = json; }

int log_level_parse(const char *s)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (streq(s, names[i]))
			return (int)i;
	return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	if (level < min_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	char ts[40];
	size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));
	_cleanup_free_ char *line = NULL;
	if (as_json) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "time", ts, "level", names[level], "msg", msg);
		char *s = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		line = xasprintf("%s\n", s ? s : "{}");
		free(s);
	} else {
		line = xasprintf("%s %-5s %s\n", ts, names[level], msg);
	}
	ssize_t w = write(STDERR_FILENO, line, strlen(line));
	(void)w;
}
