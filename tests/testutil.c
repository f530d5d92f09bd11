#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char *
data_path(const char *rel)
{
	size_t n = strlen(OCAPN_TEST_DATA) + strlen(rel) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", OCAPN_TEST_DATA, rel);
	return p;
}

int
tu_data_exists(const char *rel)
{
	char *p = data_path(rel);
	FILE *f = fopen(p, "rb");
	free(p);
	if (f)
		fclose(f);
	return f != NULL;
}

uint8_t *
tu_read_data(const char *rel, size_t *len)
{
	char *p = data_path(rel);
	FILE *f = fopen(p, "rb");
	if (!f)
		fail_msg("cannot open %s", p);
	free(p);
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	*len = n;
	return buf;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
tu_list_data(const char *dir, const char *prefix, const char *suffix)
{
	char *p = data_path(dir);
	DIR *d = opendir(p);
	if (!d)
		fail_msg("cannot open directory %s", p);
	free(p);
	size_t n = 0, cap = 16;
	char **list = malloc(cap * sizeof(*list));
	assert_non_null(list);
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), pl = strlen(prefix),
		       sl = strlen(suffix);
		if (l < pl + sl || strncmp(e->d_name, prefix, pl) ||
		    strcmp(e->d_name + l - sl, suffix))
			continue;
		if (n + 1 >= cap) {
			cap *= 2;
			list = realloc(list, cap * sizeof(*list));
			assert_non_null(list);
		}
		size_t m = strlen(dir) + l + 2;
		list[n] = malloc(m);
		assert_non_null(list[n]);
		snprintf(list[n], m, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	qsort(list, n, sizeof(*list), cmp_str);
	list[n] = NULL;
	return list;
}

void
tu_free_list(char **list)
{
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}
