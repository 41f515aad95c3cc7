/*
 * runtime — the helpers of runtime.h shared by every backend: freeing the
 * status and info structs they hand to the agent.
 */
#include "agent/runtime.h"

#include <stdlib.h>
#include <string.h>

void rt_status_clear(struct rt_status *st)
{
	if (!st)
		return;
	free(st->id);
	free(st->task_uid);
	free(st->ns);
	free(st->name);
	free(st->reason);
	free(st->message);
	free(st->ip);
	memset(st, 0, sizeof(*st));
}

void rt_status_array_free(struct rt_status *sts, size_t n)
{
	for (size_t i = 0; sts && i < n; i++)
		rt_status_clear(&sts[i]);
	free(sts);
}

void rt_info_clear(struct rt_info *info)
{
	if (!info)
		return;
	free(info->name);
	free(info->version);
	free(info->warning);
	memset(info, 0, sizeof(*info));
}
