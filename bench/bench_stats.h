/*
 * Timing and summary statistics for the CapTP and netlayer benchmarks.
 *
 * Wall-clock times on the machines these run on vary up to 2x between
 * runs, so every figure the benchmarks print is a median over repeated
 * samples, with the spread (minimum and maximum) beside it, and every
 * comparison is a ratio of two figures measured in the same repetition.
 */
#ifndef OCAPN_BENCH_STATS_H
#define OCAPN_BENCH_STATS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Samples of one measured quantity. */
#define BENCH_MAX_SAMPLES 64

struct bench_series {
	double v[BENCH_MAX_SAMPLES];
	size_t n;
};

static inline void
bench_add(struct bench_series *s, double x)
{
	if (s->n < BENCH_MAX_SAMPLES)
		s->v[s->n++] = x;
}

static int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median, minimum and maximum (0 when empty). */
static inline void
bench_summary(const struct bench_series *s, double *med, double *lo,
    double *hi)
{
	double tmp[BENCH_MAX_SAMPLES];
	if (s->n == 0) {
		*med = *lo = *hi = 0;
		return;
	}
	memcpy(tmp, s->v, s->n * sizeof(double));
	qsort(tmp, s->n, sizeof(double), bench_cmp_double);
	*lo = tmp[0];
	*hi = tmp[s->n - 1];
	*med = s->n % 2 ? tmp[s->n / 2]
			: (tmp[s->n / 2 - 1] + tmp[s->n / 2]) / 2;
}

static inline double
bench_median(const struct bench_series *s)
{
	double m, lo, hi;
	bench_summary(s, &m, &lo, &hi);
	return m;
}

#endif
