/*
 * syrup-demo: build an OCapN message with the Syrup writer, decode it
 * again, and print it in the spec's abstract notation.
 *
 * Build: part of the meson build (build/examples/syrup-demo).
 */
#include <stdio.h>
#include <string.h>

#include <ocapn/ocapn.h>

#define LIT(s) (s), (sizeof(s) - 1)

static void
show(const char *title, const uint8_t *p, size_t n)
{
	printf("%s (%zu bytes):\n  ", title, n);
	for (size_t i = 0; i < n; i++)
		putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
	putchar('\n');
}

int
main(void)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	if (!w || !dec || !arena)
		return 1;

	/* <op:deliver <desc:export 1> ['drive {"speed": 88, "mode": 'fast}]
	 *             3 <desc:import-object 5>>
	 * The dict is written out of order; the writer sorts it. */
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:deliver"));
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("desc:export"));
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_record_end(w);
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, LIT("drive"));
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_string(w, LIT("speed"));
	ocapn_syrup_write_int(w, 88);
	ocapn_syrup_write_string(w, LIT("mode"));
	ocapn_syrup_write_symbol(w, LIT("fast"));
	ocapn_syrup_write_dict_end(w);
	ocapn_syrup_write_list_end(w);
	ocapn_syrup_write_int(w, 3);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("desc:import-object"));
	ocapn_syrup_write_int(w, 5);
	ocapn_syrup_write_record_end(w);
	ocapn_syrup_write_record_end(w);

	const uint8_t *bytes;
	size_t len;
	int rc = ocapn_syrup_writer_finish(w, &bytes, &len);
	if (rc) {
		fprintf(stderr, "encode: %s\n", ocapn_strerror(rc));
		return 1;
	}
	show("canonical Syrup", bytes, len);

	ocapn_value *v;
	rc = ocapn_syrup_decode_one(dec, arena, bytes, len, &v);
	if (rc) {
		size_t off;
		const char *why = ocapn_syrup_decoder_error(dec, &off);
		fprintf(stderr, "decode: offset %zu: %s\n", off, why);
		return 1;
	}
	ocapn_buffer text;
	ocapn_buffer_init(&text);
	if (ocapn_notation_print(v, 0, &text, NULL) == 0)
		printf("abstract notation:\n  %.*s\n", (int)text.len,
		    (const char *)text.data);
	ocapn_buffer_release(&text, NULL);

	/* A non-canonical input is refused with its offset and reason. */
	static const char bad[] = "{1\"b1+1\"a2+}";
	ocapn_arena_reset(arena);
	rc = ocapn_syrup_decode_one(dec, arena, (const uint8_t *)bad,
	    sizeof(bad) - 1, &v);
	size_t off;
	const char *why = ocapn_syrup_decoder_error(dec, &off);
	printf("decoding %s: %s at offset %zu: %s\n", bad, ocapn_err_name(rc),
	    off, why);

	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	ocapn_syrup_writer_free(w);
	return 0;
}
