/*
 * greeter: the vat API in one file.
 *
 * A server vat serves a greeter object on a tcp-testing-only port; a client
 * vat, on the same libuv loop, enlivens it by sturdyref URI, calls it, and
 * prints the answer.  Run: build/examples/greeter
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

/* An object is a C function with user data.  `args` is the message (a
 * list); `resolver` settles the caller's promise (NULL if the caller
 * wants no answer). */
static int
greet(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	const char *greeting = user;
	if (args->len != 1 || args->u.items[0].kind != OCAPN_STRING)
		return ocapn_break_str(resolver, "greet: expected one name");
	char text[128];
	snprintf(text, sizeof(text), "%s, %.*s!", greeting,
	    (int)args->u.items[0].len, (const char *)args->u.items[0].u.p);
	ocapn_value answer;
	ocapn_value_set_string(&answer, text, strlen(text));
	return resolver ? ocapn_resolve(resolver, &answer) : OCAPN_OK;
}

/* Called in a later turn of the client vat, once the answer is known. */
static void
answered(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	(void)vat;
	ocapn_runtime **rts = user;
	size_t n;
	const char *text = ok ? (const char *)v->u.p : ocapn_break_text(v, &n);
	if (ok)
		n = v->len;
	printf("%s: %.*s\n", ok ? "answer" : "broken", (int)n, text);
	ocapn_runtime_close(rts[0], NULL, NULL);
	ocapn_runtime_close(rts[1], NULL, NULL);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t loop;
	uv_loop_init(&loop);

	/* The server: a runtime (vat + loop glue) with a netlayer. */
	ocapn_runtime *server;
	ocapn_netlayer *snl;
	ocapn_runtime_new(&loop, NULL, NULL, &server);
	ocapn_tcp_netlayer_new(&loop, "127.0.0.1", 0, NULL, NULL, &snl);
	ocapn_runtime_add_netlayer(server, snl);

	ocapn_ref *greeter;
	ocapn_vat_spawn(ocapn_runtime_vat(server), greet, "Hello", NULL,
	    &greeter);
	/* Reachable by whoever learns this swiss number. */
	const char swiss[] = "greeter-swiss-number";
	ocapn_vat_register(ocapn_runtime_vat(server), (const uint8_t *)swiss,
	    sizeof(swiss) - 1, greeter);
	ocapn_ref_release(greeter); /* the registry keeps it */

	ocapn_buffer uri;
	ocapn_buffer_init(&uri);
	ocapn_runtime_sturdyref_uri(server, snl, (const uint8_t *)swiss,
	    sizeof(swiss) - 1, &uri);
	printf("sturdyref: %s\n", (const char *)uri.data);

	/* The client: enliven the sturdyref (a promise for the greeter),
	 * send it a message at once (pipelined), wait for the answer. */
	ocapn_runtime *client;
	ocapn_netlayer *cnl;
	ocapn_runtime_new(&loop, NULL, NULL, &client);
	ocapn_tcp_netlayer_new(&loop, "127.0.0.1", 0, NULL, NULL, &cnl);
	ocapn_runtime_add_netlayer(client, cnl);

	ocapn_ref *remote, *result;
	ocapn_runtime_enliven_uri(client, (const char *)uri.data, uri.len,
	    &remote);
	ocapn_value name, args;
	ocapn_value_set_string(&name, "world", 5);
	ocapn_value_set_list(&args, &name, 1);
	ocapn_send(remote, &args, &result);
	ocapn_runtime *rts[2] = {server, client};
	ocapn_when(result, answered, rts);

	uv_run(&loop, UV_RUN_DEFAULT); /* until both runtimes closed */

	ocapn_ref_release(result);
	ocapn_ref_release(remote);
	ocapn_buffer_release(&uri, NULL);
	ocapn_runtime_free(client);
	ocapn_runtime_free(server);
	uv_loop_close(&loop);
	return 0;
}
