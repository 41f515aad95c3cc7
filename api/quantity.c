/*
 * api/quantity — Kubernetes resource quantities as milli-unit integers.
 *
 * Grammar (Kubernetes' resource.Quantity):
 *   quantity ::= ["+"] number [suffix]
 *   number   ::= digits | digits "." [digits] | "." digits
 *   suffix   ::= n | u | m | "" | k | M | G | T | P | E      (decimal SI)
 *              | Ki | Mi | Gi | Ti | Pi | Ei                 (binary SI)
 *              | (e | E) ["+" | "-"] digits                  (exponent)
 * The value is computed exactly: up to 19 significant digits are kept as an
 * integer mantissa and the rest only as a "something non-zero was dropped"
 * flag, then scaled in 128-bit arithmetic. Like Kubernetes' MilliValue(), a
 * value below one milli-unit rounds up ("1n" is 1m), so a request is never
 * understated. Errors name the input and, for the common mistakes ("512MB",
 * "1gi"), the spelling that was probably meant.
 */
#include "api/quantity.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "common/kerr.h"
#include "common/util.h"

#define KNOWN_SUFFIXES "n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent as in 1e3"

struct qnum {
	uint64_t mant; /* significant digits */
	int e10;       /* power of ten applied to mant */
	bool sticky;   /* non-zero digits were dropped beyond mant */
	int bin_shift; /* power of two (binary suffixes) */
};

/* Reads digits into q; returns the number consumed. frac: digits after '.'. */
static size_t read_digits(const char *s, struct qnum *q, bool frac, int *ndig)
{
	size_t i = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		int d = s[i] - '0';
		if (q->mant == 0 && d == 0) {
			if (frac)
				q->e10--;
		} else if (*ndig < 19) {
			q->mant = q->mant * 10 + (uint64_t)d;
			(*ndig)++;
			if (frac)
				q->e10--;
		} else {
			if (!frac)
				q->e10++; /* a dropped integer digit is a factor of ten */
			if (d)
				q->sticky = true;
		}
	}
	return i;
}

static int suffix_hint(const char *input, const char *suf, struct kerr *err)
{
	static const char *const bin[] = {"ki", "mi", "gi", "ti", "pi", "ei"};
	static const char *const canon[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
	char low[4] = {0};
	size_t n = strlen(suf);
	for (size_t i = 0; i < n && i < 3; i++)
		low[i] = (char)((suf[i] >= 'A' && suf[i] <= 'Z') ? suf[i] + 32 : suf[i]);
	for (size_t i = 0; n == 2 && i < ARRAY_SIZE(bin); i++)
		if (streq(low, bin[i]))
			return kerr_set(
			    err, EINVAL,
			    "invalid quantity \"%s\": unknown suffix \"%s\", did you mean \"%s\"?",
			    input, suf, canon[i]);
	if (n == 2 && (suf[1] == 'B' || suf[1] == 'b') && strchr("kKMGTPE", suf[0])) {
		char up = suf[0] == 'k' ? 'K' : suf[0];
		return kerr_set(
		    err, EINVAL,
		    "invalid quantity \"%s\": unknown suffix \"%s\"; write %ci for powers of 1024 "
		    "or %c for powers of 1000",
		    input, suf, up, up == 'K' ? 'k' : up);
	}
	return kerr_set(err, EINVAL,
	                "invalid quantity \"%s\": unknown suffix \"%s\" (known: " KNOWN_SUFFIXES
	                ")",
	                input, suf);
}

/* Exponent after 'e'/'E' at s; returns 1 if s is an exponent (and sets
 * *e), 0 if not, -1 if it is malformed. */
static int read_exponent(const char *s, int *e)
{
	const char *p = s + 1;
	int sign = 1;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (*p < '0' || *p > '9')
		return 0;
	long v = 0;
	for (; *p >= '0' && *p <= '9'; p++)
		if (v < 100000)
			v = v * 10 + (*p - '0');
	if (*p)
		return -1;
	*e = (int)(sign * v);
	return 1;
}

static int apply_suffix(const char *input, const char *suf, struct qnum *q, struct kerr *err)
{
	static const struct {
		const char *s;
		int e10, shift;
	} tab[] = {
	    {"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},
	    {"k", 3, 0},   {"M", 6, 0},   {"G", 9, 0},   {"T", 12, 0},
	    {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
	    {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
	};
	for (size_t i = 0; i < ARRAY_SIZE(tab); i++) {
		if (streq(suf, tab[i].s)) {
			q->e10 += tab[i].e10;
			q->bin_shift = tab[i].shift;
			return 0;
		}
	}
	if (*suf == 'e' || *suf == 'E') {
		int e = 0;
		int r = read_exponent(suf, &e);
		if (r > 0) {
			q->e10 += e;
			return 0;
		}
		if (r < 0)
			return kerr_set(err, EINVAL,
			                "invalid quantity \"%s\": malformed exponent \"%s\"", input,
			                suf);
	}
	return suffix_hint(input, suf, err);
}

/* mant * 2^shift * 10^e10, in milli-units already folded into e10. */
static int scale(const char *input, const struct qnum *q, int64_t *out, struct kerr *err)
{
	typedef unsigned __int128 u128;
	if (q->mant == 0) {
		*out = 0;
		return 0;
	}
	u128 v = (u128)q->mant << q->bin_shift; /* < 2^124 */
	const u128 max = (u128)INT64_MAX;
	if (q->e10 >= 0) {
		for (int i = 0; i < q->e10; i++) {
			if (v > max)
				break;
			v *= 10;
		}
		if (q->sticky && q->e10 == 0 && q->bin_shift == 0)
			v += 1;
	} else {
		bool rem = q->sticky;
		for (int i = 0; i < -q->e10 && v; i++) {
			if (v % 10)
				rem = true;
			v /= 10;
		}
		if (rem)
			v += 1;
	}
	if (v > max)
		return kerr_set(err, ERANGE, "quantity \"%s\" is too large", input);
	*out = (int64_t)v;
	return 0;
}

int api_quantity_parse(const char *s, int64_t *milli, struct kerr *err)
{
	if (!s || !*s)
		return kerr_set(err, EINVAL, "invalid quantity \"\": empty");
	const char *p = s;
	if (*p == '-')
		return kerr_set(err, EINVAL, "invalid quantity \"%s\": must not be negative", s);
	if (*p == '+')
		p++;
	struct qnum q = {0, 3, false, 0}; /* e10 starts at 3: milli-units */
	int ndig = 0;
	size_t ni = read_digits(p, &q, false, &ndig);
	p += ni;
	size_t nf = 0;
	if (*p == '.') {
		p++;
		nf = read_digits(p, &q, true, &ndig);
		p += nf;
	}
	if (ni == 0 && nf == 0)
		return kerr_set(
		    err, EINVAL,
		    "invalid quantity \"%s\": must start with a number, as in 500m or 128Mi", s);
	int r = apply_suffix(s, p, &q, err);
	if (r < 0)
		return r;
	int64_t v = 0;
	r = scale(s, &q, &v, err);
	if (r < 0)
		return r;
	*milli = v;
	return 0;
}

int api_quantity_from_json(json_t *v, int64_t *milli, struct kerr *err)
{
	if (json_is_string(v))
		return api_quantity_parse(json_string_value(v), milli, err);
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			return kerr_set(err, EINVAL, "invalid quantity %lld: must not be negative",
			                (long long)i);
		if (i > INT64_MAX / 1000)
			return kerr_set(err, ERANGE, "quantity %lld is too large", (long long)i);
		*milli = (int64_t)i * 1000;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!isfinite(d))
			return kerr_set(err, EINVAL, "invalid quantity: not a finite number");
		char buf[64];
		snprintf(buf, sizeof buf, "%.15g", d);
		return api_quantity_parse(buf, milli, err);
	}
	return kerr_set(err, EINVAL,
	                "must be a quantity (a string such as \"500m\" or \"128Mi\", or a number)");
}

char *api_quantity_format_cpu(int64_t millicores)
{
	if (millicores % 1000 == 0)
		return xasprintf("%lld", (long long)(millicores / 1000));
	return xasprintf("%lldm", (long long)millicores);
}

char *api_quantity_format_bytes(int64_t bytes)
{
	static const char *const suf[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
	if (bytes == 0)
		return xstrdup("0");
	int best = -1;
	for (int i = 0; i < (int)ARRAY_SIZE(suf); i++) {
		int64_t unit = (int64_t)1 << (10 * (i + 1));
		if (bytes % unit == 0)
			best = i;
		else
			break;
	}
	if (best < 0)
		return xasprintf("%lld", (long long)bytes);
	return xasprintf("%lld%s", (long long)(bytes >> (10 * (best + 1))), suf[best]);
}

int api_quantity_cpu(json_t *v, int64_t *millicores, struct kerr *err)
{
	return api_quantity_from_json(v, millicores, err);
}

int api_quantity_memory(json_t *v, int64_t *bytes, struct kerr *err)
{
	int64_t m;
	int r = api_quantity_from_json(v, &m, err);
	if (r < 0)
		return r;
	*bytes = m / 1000 + (m % 1000 ? 1 : 0);
	return 0;
}
