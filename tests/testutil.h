/*
 * Shared helpers for the cmocka tests.
 */
#ifndef OCAPN_TESTUTIL_H
#define OCAPN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ocapn/ocapn.h>

/* Read tests/data/<rel> into a malloc'ed buffer (fails the test if it
 * cannot).  Free with free(). */
uint8_t *tu_read_data(const char *rel, size_t *len);

/* Does tests/data/<rel> exist? */
int tu_data_exists(const char *rel);

/* List the files matching tests/data/<dir>/<prefix>*<suffix>: returns a
 * NULL-terminated malloc'ed array of malloc'ed relative paths, sorted. */
char **tu_list_data(const char *dir, const char *prefix, const char *suffix);
void tu_free_list(char **list);

#endif
