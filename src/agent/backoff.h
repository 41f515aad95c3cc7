/*
 * backoff — restart delays for crashing tasks: base, doubling per
 * consecutive failure up to a cap, forgotten after a stretch of clean
 * running (Kubernetes' CrashLoopBackOff). Pure, thread-safe.
 */
#pragma once

#include <stdint.h>

struct backoff {
	int64_t base_ms;  /* delay before the first restart (> 0) */
	int64_t max_ms;   /* cap (>= base_ms) */
	int64_t reset_ms; /* a run at least this long resets the failure count */
};

/* The delay before restart number `failures` (1 = the first restart after
 * a failure): base * 2^(failures-1), capped at max. 0 when failures is 0.
 * Never overflows. */
int64_t backoff_delay_ms(const struct backoff *b, unsigned failures);

/* The consecutive-failure count after a run of ran_ms that ended and is
 * followed by a restart: 1 when the run lasted reset_ms or more (the
 * count starts over), else failures + 1. */
unsigned backoff_after_run(const struct backoff *b, unsigned failures, int64_t ran_ms);
