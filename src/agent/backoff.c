/*
 * backoff — the pure arithmetic of restart delays, kept apart from the
 * agent so that it can be tested by hand-computed values.
 */
#include "agent/backoff.h"

int64_t backoff_delay_ms(const struct backoff *b, unsigned failures)
{
	if (failures == 0)
		return 0;
	int64_t d = b->base_ms > 0 ? b->base_ms : 1;
	for (unsigned i = 1; i < failures; i++) {
		if (d > b->max_ms / 2)
			return b->max_ms; /* doubling would pass the cap (or overflow) */
		d *= 2;
	}
	return d > b->max_ms ? b->max_ms : d;
}

unsigned backoff_after_run(const struct backoff *b, unsigned failures, int64_t ran_ms)
{
	if (ran_ms >= b->reset_ms)
		return 1;
	return failures < 1000000 ? failures + 1 : failures;
}
