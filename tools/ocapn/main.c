/*
 * ocapn: command-line front end of libocapn.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

#include "cli.h"

static const char usage[] =
    "usage: ocapn <command> [options]\n"
    "\n"
    "commands:\n"
    "  syrup decode [FILE|-]   Syrup values in, one notation line each out\n"
    "  syrup encode [FILE|-]   notation in, canonical Syrup bytes out\n"
    "  serve-testsuite ...     serve the conformance suite's objects\n"
    "  call URI [ARG ...]      call an object by sturdyref URI\n"
    "  intro-server PATH       unix-domain-socket introduction server\n"
    "\n"
    "options:\n"
    "  --version               print the library version\n"
    "  --help                  print this help\n"
    "\n"
    "Run 'ocapn <command> --help' for the options of a command.\n";

void
cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("ocapn: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_read_all(const char *path, ocapn_buffer *buf)
{
	FILE *f = stdin;
	if (path && strcmp(path, "-") != 0) {
		f = fopen(path, "rb");
		if (!f) {
			cli_error("%s: %s", path, strerror(errno));
			return -1;
		}
	}
	for (;;) {
		if (ocapn_buffer_reserve(buf, NULL, 65536)) {
			cli_error("out of memory");
			goto fail;
		}
		size_t n = fread(buf->data + buf->len, 1, buf->cap - buf->len,
		    f);
		buf->len += n;
		if (n == 0) {
			if (ferror(f)) {
				cli_error("%s: read error",
				    path ? path : "stdin");
				goto fail;
			}
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	return 0;
fail:
	if (f != stdin)
		fclose(f);
	return -1;
}

int
cli_write_all(const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, stdout) != n) {
		cli_error("write error: %s", strerror(errno));
		return -1;
	}
	if (fflush(stdout)) {
		cli_error("write error: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("ocapn %s\n", ocapn_version());
		return 0;
	}
	if (!strcmp(cmd, "syrup"))
		return cmd_syrup(argc - 1, argv + 1);
	if (!strcmp(cmd, "serve-testsuite"))
		return cmd_serve_testsuite(argc - 1, argv + 1);
	if (!strcmp(cmd, "call"))
		return cmd_call(argc - 1, argv + 1);
	/* unix-domain-socket introduction server */
	if (!strcmp(cmd, "intro-server"))
		return cmd_intro(argc - 1, argv + 1);
	cli_error("unknown command '%s' (try 'ocapn --help')", cmd);
	return 2;
}
