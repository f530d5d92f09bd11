/*
 * A driver for the fuzz targets without libFuzzer: replays every file
 * named on the command line (or found in a directory named there), then a
 * fixed, reproducible set of mutations of each (bit flips, interesting
 * bytes, insertions, deletions, duplicated ranges, truncations and
 * splices of two files).  It lets an ordinary build run each target's
 * checks over the seed corpus and its neighbourhood.
 *
 * usage: fuzz_TARGET_replay [-m MUTATIONS_PER_FILE] PATH...
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz_common.h"

#define MAX_INPUT 65536

struct input {
	uint8_t *data;
	size_t len;
};

static struct input *inputs;
static size_t ninputs, cap_inputs;

static void
add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(2);
	}
	uint8_t *buf = malloc(MAX_INPUT);
	if (!buf)
		exit(2);
	size_t n = fread(buf, 1, MAX_INPUT, f);
	fclose(f);
	if (ninputs == cap_inputs) {
		cap_inputs = cap_inputs ? 2 * cap_inputs : 64;
		inputs = realloc(inputs, cap_inputs * sizeof(*inputs));
		if (!inputs)
			exit(2);
	}
	inputs[ninputs].data = buf;
	inputs[ninputs].len = n;
	ninputs++;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
add_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		exit(2);
	}
	if (!S_ISDIR(st.st_mode)) {
		add_file(path);
		return;
	}
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		exit(2);
	}
	/* Sorted, so that the mutation sequence does not depend on the
	 * order of directory entries. */
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				exit(2);
		}
		size_t l = strlen(path) + strlen(e->d_name) + 2;
		names[n] = malloc(l);
		if (!names[n])
			exit(2);
		snprintf(names[n], l, "%s/%s", path, e->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n; i++) {
		add_path(names[i]);
		free(names[i]);
	}
	free(names);
}

/* The input being run, saved to ./replay-failure.bin if a check aborts. */
static const uint8_t *cur;
static size_t cur_len;

static void
on_abort(int sig)
{
	int fd = open("replay-failure.bin", O_WRONLY | O_CREAT | O_TRUNC,
	    0644);
	if (fd >= 0) {
		ssize_t r = write(fd, cur, cur_len);
		(void)r;
		close(fd);
	}
	static const char msg[] = "failing input saved to replay-failure.bin\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
run_one(const uint8_t *p, size_t len)
{
	/* A private copy, so reads past the end are caught. */
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		exit(2);
	memcpy(copy, p, len);
	cur = copy;
	cur_len = len;
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

static uint64_t rng = 0x853c49e6748fea9bULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

/* Bytes that mean something to Syrup or to the notation. */
static const char interesting[] = "0123456789+-:\"'[]{}<>#$tfDF \n\t\\|,.e"
				  "nai\x80\xc0\xed\xf4\xff";

static size_t
mutate(uint8_t *buf, size_t len, size_t cap, const struct input *other)
{
	int rounds = 1 + (int)rnd(4);
	for (int r = 0; r < rounds; r++) {
		switch (rnd(8)) {
		case 0: /* flip a bit */
			if (len)
				buf[rnd((uint32_t)len)] ^=
				    (uint8_t)(1u << rnd(8));
			break;
		case 1: /* overwrite with an interesting byte */
			if (len)
				buf[rnd((uint32_t)len)] = (uint8_t)
				    interesting[rnd(sizeof(interesting) - 1)];
			break;
		case 2: /* insert an interesting byte */
			if (len < cap) {
				size_t at = rnd((uint32_t)len + 1);
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = (uint8_t)interesting[rnd(
				    sizeof(interesting) - 1)];
				len++;
			}
			break;
		case 3: /* delete a range */
			if (len) {
				size_t at = rnd((uint32_t)len);
				size_t n = 1 + rnd((uint32_t)(len - at));
				if (n > 8)
					n = 1 + rnd(8);
				memmove(buf + at, buf + at + n, len - at - n);
				len -= n;
			}
			break;
		case 4: /* duplicate a range */
			if (len) {
				size_t at = rnd((uint32_t)len);
				size_t n = 1 + rnd((uint32_t)(len - at));
				if (len + n > cap)
					break;
				memmove(buf + at + n, buf + at, len - at);
				len += n;
			}
			break;
		case 5: /* truncate */
			len = rnd((uint32_t)len + 1);
			break;
		case 6: /* splice the tail of another input */
			if (other->len) {
				size_t at = rnd((uint32_t)len + 1);
				size_t from = rnd((uint32_t)other->len);
				size_t n = other->len - from;
				if (at + n > cap)
					n = cap - at;
				memcpy(buf + at, other->data + from, n);
				len = at + n;
			}
			break;
		default: /* a digit run, to hit lengths and limits */
			if (len + 20 <= cap) {
				size_t at = rnd((uint32_t)len + 1);
				size_t n = 1 + rnd(20);
				memmove(buf + at + n, buf + at, len - at);
				for (size_t k = 0; k < n; k++)
					buf[at + k] = (uint8_t)('0' + rnd(10));
				len += n;
			}
			break;
		}
	}
	return len;
}

int
main(int argc, char **argv)
{
	long per_file = 200;
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "-m") == 0) {
		per_file = strtol(argv[i + 1], NULL, 10);
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [-m MUTATIONS] PATH...\n", argv[0]);
		return 2;
	}
	for (; i < argc; i++)
		add_path(argv[i]);
	if (ninputs == 0) {
		fprintf(stderr, "no inputs\n");
		return 2;
	}
	signal(SIGABRT, on_abort);
	size_t cap = 2 * MAX_INPUT;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return 2;
	unsigned long runs = 0;
	for (size_t k = 0; k < ninputs; k++) {
		run_one(inputs[k].data, inputs[k].len);
		runs++;
		for (long m = 0; m < per_file; m++) {
			size_t len = inputs[k].len;
			memcpy(buf, inputs[k].data, len);
			len = mutate(buf, len, cap,
			    &inputs[rnd((uint32_t)ninputs)]);
			run_one(buf, len);
			runs++;
		}
	}
	printf("%zu inputs, %lu runs, no check failed\n", ninputs, runs);
	for (size_t k = 0; k < ninputs; k++)
		free(inputs[k].data);
	free(inputs);
	free(buf);
	return 0;
}
