/*
 * agent_usage — the "changed materially" rule of agent_usage.h: absolute
 * floors (10m, 1Mi) keep near-idle tasks quiet, relative ones (20%, 10%)
 * keep busy ones from being rewritten for noise.
 */
#include "agent/agent_usage.h"

static bool moved(int64_t old, int64_t now, int64_t floor, int64_t pct)
{
	if ((old < 0) != (now < 0))
		return true;
	if (old < 0)
		return false;
	int64_t d = now > old ? now - old : old - now;
	int64_t rel = old * pct / 100;
	return d >= (rel > floor ? rel : floor);
}

bool agent_usage_changed(int64_t old_cpu, int64_t old_mem, int64_t cpu, int64_t mem)
{
	return moved(old_cpu, cpu, 10, 20) || moved(old_mem, mem, 1 << 20, 10);
}
