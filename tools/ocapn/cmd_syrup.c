/*
 * ocapn syrup decode|encode: convert between Syrup bytes and the abstract
 * notation.  Output is produced in memory and written only when the whole
 * input converted, so a failure never leaves partial output on stdout.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: ocapn syrup decode [FILE|-]\n"
    "       ocapn syrup encode [FILE|-]\n"
    "\n"
    "decode  read a stream of Syrup values, print one notation line per\n"
    "        value\n"
    "encode  read values in abstract notation (whitespace separated), write\n"
    "        their canonical Syrup encoding\n"
    "\n"
    "Input is FILE, or standard input when FILE is '-' or absent.\n"
    "On invalid input: exit status 1, nothing on standard output, and one\n"
    "line on standard error with the byte offset and the reason.\n"
    "The notation is described in docs/syrup.md.\n";

static int
is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
do_decode(const ocapn_buffer *in)
{
	int status = 1;
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_buffer out;
	ocapn_buffer_init(&out);
	if (!dec || !arena) {
		cli_error("out of memory");
		goto done;
	}
	size_t off = 0;
	for (;;) {
		size_t rest = in->len - off, k = 0;
		while (k < rest && is_ws(in->data[off + k]))
			k++;
		if (k == rest)
			break;
		ocapn_value *v;
		size_t used;
		int rc = ocapn_syrup_decode(dec, arena, in->data + off, rest,
		    &v, &used);
		if (rc) {
			size_t eo;
			const char *why = ocapn_syrup_decoder_error(dec, &eo);
			cli_error("syrup decode: offset %zu: %s (%s)",
			    off + eo, why, ocapn_strerror(rc));
			goto done;
		}
		rc = ocapn_notation_print(v, 0, &out, NULL);
		if (rc || ocapn_buffer_append(&out, NULL, "\n", 1)) {
			cli_error("syrup decode: offset %zu: cannot print "
			    "value (%s)", off, ocapn_strerror(rc));
			goto done;
		}
		ocapn_arena_reset(arena);
		off += used;
	}
	if (cli_write_all(out.data, out.len) == 0)
		status = 0;
done:
	ocapn_buffer_release(&out, NULL);
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	return status;
}

static int
do_encode(const ocapn_buffer *in)
{
	int status = 1;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_syrup_writer *w =
	    ocapn_syrup_writer_new(OCAPN_SYRUP_WRITE_FLOAT32, NULL);
	ocapn_buffer out;
	ocapn_buffer_init(&out);
	if (!arena || !w) {
		cli_error("out of memory");
		goto done;
	}
	size_t off = 0;
	for (;;) {
		while (off < in->len && is_ws(in->data[off]))
			off++;
		if (off == in->len)
			break;
		ocapn_value *v;
		size_t used, eo;
		const char *why;
		int rc = ocapn_notation_parse((const char *)in->data + off,
		    in->len - off, arena, &v, &used, &eo, &why);
		if (rc) {
			cli_error("syrup encode: offset %zu: %s (%s)",
			    off + eo, why, ocapn_strerror(rc));
			goto done;
		}
		ocapn_syrup_writer_reset_buffer(w, &out);
		ocapn_syrup_write_value(w, v);
		rc = ocapn_syrup_writer_finish(w, NULL, NULL);
		if (rc) {
			ocapn_syrup_writer_error(w, &why);
			cli_error("syrup encode: offset %zu: %s (%s)", off,
			    why, ocapn_strerror(rc));
			goto done;
		}
		ocapn_arena_reset(arena);
		off += used;
	}
	if (cli_write_all(out.data, out.len) == 0)
		status = 0;
done:
	ocapn_buffer_release(&out, NULL);
	ocapn_syrup_writer_free(w);
	ocapn_arena_free(arena);
	return status;
}

int
cmd_syrup(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	if (argc > 3) {
		cli_error("syrup %s: too many arguments", sub);
		return 2;
	}
	if (argc == 3 && !strcmp(argv[2], "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(sub, "decode") && strcmp(sub, "encode")) {
		cli_error("syrup: unknown subcommand '%s'", sub);
		return 2;
	}
	ocapn_buffer in;
	ocapn_buffer_init(&in);
	if (cli_read_all(argc == 3 ? argv[2] : NULL, &in)) {
		ocapn_buffer_release(&in, NULL);
		return 1;
	}
	int rc = !strcmp(sub, "decode") ? do_decode(&in) : do_encode(&in);
	ocapn_buffer_release(&in, NULL);
	return rc;
}
