/*
 * docker_logs — the demultiplexer for Docker's attach/logs stream format.
 *
 * A container without a TTY sends its output as frames: an 8-byte header
 * (stream type: 0 stdin, 1 stdout, 2 stderr; three zero bytes; the payload
 * length as a 4-byte big-endian number) followed by the payload. Frames
 * arrive split anywhere across network reads, so the demultiplexer keeps
 * the partial header and the bytes left of the current payload between
 * calls. A TTY container's stream is raw bytes (docker_demux_init with
 * raw = true passes them through as stdout).
 *
 * Pure and allocation-free; one struct per stream; not thread-safe (one
 * stream is read by one thread).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum docker_stream {
	DOCKER_STDIN = 0,
	DOCKER_STDOUT = 1,
	DOCKER_STDERR = 2,
};

struct docker_demux {
	bool raw;                  /* TTY stream: no frames */
	bool failed;               /* a bad header was seen; every later feed fails */
	unsigned char hdr[8];      /* partial header */
	size_t hdr_len;            /* bytes of hdr filled */
	uint32_t left;             /* payload bytes of the current frame still to come */
	enum docker_stream stream; /* of the current frame */
	uint64_t frames;           /* complete headers read, for tests and messages */
};

/* Called with each piece of payload (a frame's payload may come in several
 * pieces; pieces never mix streams). Return non-zero to stop: feed returns
 * that value. */
typedef int (*docker_demux_fn)(void *ctx, enum docker_stream stream, const char *data, size_t len);

void docker_demux_init(struct docker_demux *d, bool raw);

/* Feeds len bytes of the stream. Returns 0 when all were consumed; the
 * non-zero value fn returned when it asked to stop; -EBADMSG when a header
 * is not a frame header (stream type above 2 or non-zero padding: the
 * stream is not multiplexed or is corrupt) — the demultiplexer then stays
 * failed. */
int docker_demux_feed(struct docker_demux *d, const char *data, size_t len, docker_demux_fn fn,
                      void *ctx);

/* True when the stream ended on a frame boundary (no partial header or
 * payload pending): a stream that ends otherwise was cut short. */
bool docker_demux_complete(const struct docker_demux *d);
