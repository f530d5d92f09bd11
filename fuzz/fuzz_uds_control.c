/*
 * libFuzzer target: the unix-domain-socket control protocol as a peer or
 * an introduction server would send it.  The input is written into one
 * end of a socketpair and read back through the exact-reading channel
 * (peek, scan, consume), and every record it frames goes through the
 * record parser, as the netlayer and the server do.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netlayers/uds_ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ocapn_syrup_decoder *dec;
	static ocapn_arena *arena;
	if (!dec) {
		dec = ocapn_syrup_decoder_new(0, NULL);
		arena = ocapn_arena_new(NULL);
	}
	if (size > 65536)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return 0;
	size_t off = 0;
	while (off < size) {
		ssize_t r = send(sv[0], data + off, size - off, MSG_NOSIGNAL);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	shutdown(sv[0], SHUT_WR);
	ocapn__uds_chan ch;
	if (ocapn__uds_chan_init(&ch, sv[1], NULL) == OCAPN_OK) {
		for (;;) {
			const uint8_t *rec;
			size_t len;
			int fd, err;
			enum ocapn__uds_in in = ocapn__uds_chan_read(&ch, &rec,
			    &len, &fd, &err);
			if (in == OCAPN__UDS_IN_FD) {
				close(fd);
				continue;
			}
			if (in != OCAPN__UDS_IN_RECORD)
				break;
			struct ocapn__uds_rec r;
			const char *why;
			ocapn_arena_reset(arena);
			if (ocapn__uds_parse(dec, arena, rec, len, &r, &why) ==
				OCAPN_OK &&
			    r.kind == OCAPN__UDS_NEW_CONNECTION)
				ocapn__uds_chan_expect_fd(&ch);
		}
	}
	ocapn__uds_chan_close(&ch, NULL, NULL);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
