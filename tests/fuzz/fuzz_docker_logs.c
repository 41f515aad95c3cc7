/*
 * Fuzz target for agent/docker_logs, the demultiplexer of Docker's framed
 * attach/logs stream. Input: byte 0 picks the mode (bit 0: a raw TTY
 * stream; bit 1: the callback asks to stop after byte 1's count of payload
 * bytes, at least 1), bytes 1-4 seed the chunk sizes, the rest is the stream. The
 * stream is fed three ways — in one call, in chunks of sizes drawn from
 * the seed (empty feeds included), and byte by byte — and each must
 * deliver the same payload bytes, per stream, as a reference decoder of
 * the frame format written here from docker_logs.h, return the same result
 * and agree on docker_demux_complete(). A difference aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/docker_logs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STREAM 65536
#define STOP 7

struct sink {
	char out[3][MAX_STREAM];
	size_t len[3];
	size_t total;
	size_t stop_after; /* SIZE_MAX: never stop */
	int last_stream;
};

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_docker_logs: %s\n", what);
		abort();
	}
}

static int collect(void *ctx, enum docker_stream stream, const char *data, size_t len)
{
	struct sink *s = ctx;
	check(stream <= DOCKER_STDERR, "a piece of an unknown stream");
	check(len > 0 && data, "an empty piece");
	memcpy(s->out[stream] + s->len[stream], data, len);
	s->len[stream] += len;
	s->total += len;
	return s->total >= s->stop_after ? STOP : 0;
}

/* The frame format as docker_logs.h states it, one whole buffer at a time. */
static int reference(const unsigned char *p, size_t n, bool raw, struct sink *s, bool *complete)
{
	*complete = true;
	if (raw) {
		*complete = true;
		return n ? collect(s, DOCKER_STDOUT, (const char *)p, n) : 0;
	}
	size_t i = 0;
	while (i < n) {
		if (n - i < 8) {
			*complete = false;
			return 0;
		}
		const unsigned char *h = p + i;
		if (h[0] > 2 || h[1] || h[2] || h[3]) {
			*complete = false;
			return -EBADMSG;
		}
		uint32_t len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
		i += 8;
		size_t take = len < n - i ? len : n - i;
		if (take) {
			int r = collect(s, (enum docker_stream)h[0], (const char *)p + i, take);
			if (r)
				return r;
		}
		i += take;
		if (take < len)
			*complete = false;
	}
	return 0;
}

static uint32_t next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Feeds p[0..n) in chunks; chunk 0 means one call, 1 byte by byte, else
 * sizes 0-63 from the seed. */
static int feed(struct docker_demux *d, const unsigned char *p, size_t n, int mode, uint32_t seed,
                struct sink *s)
{
	if (mode == 0)
		return docker_demux_feed(d, (const char *)p, n, collect, s);
	uint32_t x = seed | 1;
	size_t i = 0;
	while (i < n) {
		size_t c = mode == 1 ? 1 : next_rand(&x) % 64;
		if (c > n - i)
			c = n - i;
		int r = docker_demux_feed(d, (const char *)p + i, c, collect, s);
		if (r)
			return r;
		i += c;
	}
	return docker_demux_feed(d, (const char *)p + n, 0, collect, s);
}

/* 0-2: the three feeds; 3: the reference; 4: the reference, never stopped */
static struct sink sinks[5];

static bool is_prefix(const struct sink *a, const struct sink *full)
{
	for (int st = 0; st < 3; st++)
		if (a->len[st] > full->len[st] || memcmp(a->out[st], full->out[st], a->len[st]))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5 || size - 5 > MAX_STREAM)
		return 0;
	bool raw = data[0] & 1;
	size_t stop_after = data[0] & 2 ? (data[1] ? data[1] : 1) : SIZE_MAX;
	uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
	                (uint32_t)data[4] << 24;
	const unsigned char *p = data + 5;
	size_t n = size - 5;
	for (int i = 0; i < 5; i++) {
		memset(sinks[i].len, 0, sizeof sinks[i].len);
		sinks[i].total = 0;
		sinks[i].stop_after = i == 4 ? SIZE_MAX : stop_after;
	}
	bool ref_complete, full_complete;
	int want = reference(p, n, raw, &sinks[3], &ref_complete);
	reference(p, n, raw, &sinks[4], &full_complete);
	for (int mode = 0; mode < 3; mode++) {
		struct docker_demux d;
		docker_demux_init(&d, raw);
		struct sink *s = &sinks[mode];
		int r = feed(&d, p, n, mode, seed, s);
		check(r == want, "feed returned another result than the reference");
		if (r == STOP) {
			/* pieces differ in size between feeds, so each stops at
			 * its own piece, but within the same frame */
			check(is_prefix(s, &sinks[4]) && s->total >= stop_after,
			      "a stopped feed delivered what the stream does not hold");
			continue;
		}
		for (int st = 0; st < 3; st++)
			check(s->len[st] == sinks[3].len[st] &&
			          memcmp(s->out[st], sinks[3].out[st], s->len[st]) == 0,
			      "the payload differs from the reference's");
		if (r == 0)
			check(docker_demux_complete(&d) == ref_complete,
			      "docker_demux_complete disagrees with the reference");
		if (r == -EBADMSG) {
			check(!docker_demux_complete(&d), "a failed stream counts as complete");
			check(docker_demux_feed(&d, "x", 1, collect, s) == -EBADMSG,
			      "a failed demultiplexer accepted more input");
		}
	}
	return 0;
}
