/*
 * docker_logs — demultiplexes Docker's 8-byte-header frame stream (see
 * docker_logs.h). It is a byte-at-a-time state machine over the header and
 * a pass-through over payloads, so that a frame split at any byte — as curl
 * hands over whatever one read returned — decodes the same as a whole one,
 * and payloads are never copied or buffered.
 */
#include "agent/docker_logs.h"

#include <errno.h>
#include <string.h>

void docker_demux_init(struct docker_demux *d, bool raw)
{
	memset(d, 0, sizeof(*d));
	d->raw = raw;
}

/* Validates a complete header and starts its frame. */
static int take_header(struct docker_demux *d)
{
	const unsigned char *h = d->hdr;
	if (h[0] > DOCKER_STDERR || h[1] || h[2] || h[3]) {
		d->failed = true;
		return -EBADMSG;
	}
	d->stream = (enum docker_stream)h[0];
	d->left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	d->hdr_len = 0;
	d->frames++;
	return 0;
}

int docker_demux_feed(struct docker_demux *d, const char *data, size_t len, docker_demux_fn fn,
                      void *ctx)
{
	if (d->failed)
		return -EBADMSG;
	if (d->raw)
		return len ? fn(ctx, DOCKER_STDOUT, data, len) : 0;
	while (len > 0) {
		if (d->left == 0) {
			size_t want = sizeof(d->hdr) - d->hdr_len;
			size_t n = len < want ? len : want;
			memcpy(d->hdr + d->hdr_len, data, n);
			d->hdr_len += n;
			data += n;
			len -= n;
			if (d->hdr_len < sizeof(d->hdr))
				break;
			int r = take_header(d);
			if (r < 0)
				return r;
			continue;
		}
		size_t n = len < d->left ? len : d->left;
		d->left -= (uint32_t)n;
		int r = fn(ctx, d->stream, data, n);
		if (r)
			return r;
		data += n;
		len -= n;
	}
	return 0;
}

bool docker_demux_complete(const struct docker_demux *d)
{
	return !d->failed && d->hdr_len == 0 && d->left == 0;
}
