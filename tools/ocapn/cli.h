/*
 * The `ocapn` command-line tool: shared helpers of its subcommands.
 */
#ifndef OCAPN_CLI_H
#define OCAPN_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <ocapn/ocapn.h>

/* Read a whole file ("-" or NULL = stdin) into *buf.  Returns 0 or prints
 * an error and returns -1. */
int cli_read_all(const char *path, ocapn_buffer *buf);

/* Write all bytes to stdout; returns 0 or -1 (error printed). */
int cli_write_all(const void *p, size_t n);

/* Print "ocapn: <fmt>" to stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

int cmd_syrup(int argc, char **argv);
int cmd_serve_testsuite(int argc, char **argv);
int cmd_call(int argc, char **argv);

struct netopts;
/* Parse one netlayer option at argv[*i] (advancing *i past its value):
 * 1 consumed, 0 not a netlayer option, -1 error (printed). */
int netopts_parse(int *i, int argc, char **argv, struct netopts *o);
/* cmd_intro.c */
int cmd_intro(int argc, char **argv);

#endif
