/*
 * common/sha256 — SHA-256 (FIPS 180-4), for storing minted API tokens as
 * hashes (server/auth.c). One-shot only: tokens are short. Pure,
 * thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

/* The digest of data[0..len) into out. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
/* The digest as 64 lower-case hex characters and a NUL into hex. */
void sha256_hex(const void *data, size_t len, char hex[2 * SHA256_LEN + 1]);
