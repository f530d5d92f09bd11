/*
 * ocapn call: enliven a sturdyref URI, send it arguments written in
 * notation, print the answer.
 *
 * Exit status: 0 fulfilled (value printed in notation), 1 broken
 * ("broken: <reason>"), 2 any other failure (message on stderr).
 */
#include "netopts.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "usage: ocapn call [--intro-server PATH] [--testuds-dir DIR]\n"
    "                  [--timeout S] [--trace] URI [ARG ...]\n"
    "\n"
    "Enliven the sturdyref URI, send it the arguments and print the\n"
    "answer.  Each ARG is a value in abstract notation (docs/syrup.md), or\n"
    "@URI: the object named by that sturdyref, passed as a reference.\n"
    "An shm URI names its rendezvous socket itself; the call listens in a\n"
    "private temporary directory, removed at exit.\n"
    "--trace prints every CapTP message on stderr.\n"
    "Exit status: 0 fulfilled, 1 broken, 2 other failure.\n";

struct call {
	ocapn_runtime *rt;
	ocapn_locator *peer;
	uv_timer_t timer;
	int status;
	bool finished;
	ocapn_buffer out;
};

static void
closed(void *user)
{
	(void)user;
}

static void
finish(struct call *c, int status)
{
	if (c->finished)
		return;
	c->finished = true;
	c->status = status;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, NULL);
	ocapn_runtime_close(c->rt, closed, c);
}

static void
settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct call *c = user;
	(void)vat;
	c->out.len = 0;
	if (ok) {
		if (print_value(v, &c->out)) {
			cli_error("cannot print the answer");
			finish(c, 2);
			return;
		}
		printf("%s\n", (const char *)c->out.data);
		fflush(stdout);
		finish(c, 0);
		return;
	}
	size_t n;
	const char *why = ocapn_break_text(v, &n);
	if (!ocapn_vat_find_session(vat, c->peer)) {
		/* No break from the peer: the session itself failed. */
		cli_error("call: %.*s", (int)n, why);
		finish(c, 2);
		return;
	}
	printf("broken: %.*s\n", (int)n, why);
	fflush(stdout);
	finish(c, 1);
}

static void
ref_settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct call *w = user;
	(void)vat;
	(void)v;
	w->finished = true;
	w->status = ok ? 0 : 1;
}

static void
ref_timeout_cb(uv_timer_t *t)
{
	struct call *w = t->data;
	w->finished = true;
	w->status = 3;
}

static void
timeout_cb(uv_timer_t *t)
{
	struct call *c = t->data;
	cli_error("call: no answer within the timeout");
	finish(c, 2);
}

/* The private directory of an shm call's listener ("" if none). */
static char shmdir[96];

static int
call_run(int argc, char **argv)
{
	const char *intro = NULL, *dir = NULL, *uri = NULL;
	bool trace = false;
	double timeout = 30;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		if ((!strcmp(a, "--intro-server") || !strcmp(a, "--timeout") ||
			!strcmp(a, "--testuds-dir")) &&
		    i + 1 >= argc) {
			cli_error("%s needs a value", a);
			return 2;
		}
		if (!strcmp(a, "--trace"))
			trace = true;
		else if (!strcmp(a, "--intro-server"))
			intro = argv[++i];
		else if (!strcmp(a, "--testuds-dir"))
			dir = argv[++i];
		else if (!strcmp(a, "--timeout")) {
			char *end;
			timeout = strtod(argv[++i], &end);
			if (*end || timeout <= 0) {
				cli_error("--timeout: invalid number of "
					  "seconds '%s'",
				    argv[i]);
				return 2;
			}
		} else if (!strncmp(a, "--", 2)) {
			cli_error("call: unknown option '%s'", a);
			return 2;
		} else
			break;
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	uri = argv[i++];
	ocapn_sturdyref *sr;
	size_t eo;
	const char *why;
	int rc = ocapn_sturdyref_parse_uri(uri, strlen(uri), NULL, &sr, &eo,
	    &why);
	if (rc) {
		cli_error("call: invalid sturdyref URI at offset %zu: %s", eo,
		    why);
		return 2;
	}
	size_t tl;
	const char *transport = ocapn_locator_transport(
	    ocapn_sturdyref_locator(sr), &tl);
	struct netopts o = {0};
	char name[40];
	snprintf(name, sizeof(name), "ocapn-call-%ld", (long)uv_os_getpid());
	if (!strcmp(transport, "tcp-testing-only")) {
		o.netlayer = "tcp-testing-only";
	} else if (!strcmp(transport, "testuds")) {
		if (!dir) {
			cli_error("call: a testuds URI needs --testuds-dir DIR");
			ocapn_sturdyref_free(sr);
			return 2;
		}
		o.netlayer = "testuds";
		o.dir = dir;
		o.name = name;
	} else if (!strcmp(transport, "unix-domain-socket")) {
		if (!intro) {
			cli_error("call: a unix-domain-socket URI needs "
				  "--intro-server PATH");
			ocapn_sturdyref_free(sr);
			return 2;
		}
		o.netlayer = "unix-domain-socket";
		o.intro_server = intro;
	} else if (!strcmp(transport, "shm")) {
		/* our own listener, in a directory only we can enter */
		const char *tmp = getenv("TMPDIR");
		snprintf(shmdir, sizeof(shmdir), "%s/ocapn-call-XXXXXX",
		    tmp && *tmp && strlen(tmp) < 60 ? tmp : "/tmp");
		if (!mkdtemp(shmdir)) {
			cli_error("call: cannot create a private directory in "
				  "%s",
			    tmp && *tmp ? tmp : "/tmp");
			ocapn_sturdyref_free(sr);
			return 2;
		}
		o.netlayer = "shm";
		o.dir = shmdir;
	} else {
		cli_error("call: unsupported transport '%s'", transport);
		ocapn_sturdyref_free(sr);
		return 2;
	}

	struct call c = {0};
	ocapn_buffer_init(&c.out);
	rc = ocapn_runtime_new(NULL, NULL, NULL, &c.rt);
	if (rc) {
		cli_error("cannot create the runtime: %s", ocapn_strerror(rc));
		ocapn_sturdyref_free(sr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = ocapn_runtime_loop(c.rt);
	ocapn_netlayer *nl;
	if (netopts_create(&o, loop, &nl)) {
		ocapn_sturdyref_free(sr);
		ocapn_runtime_free(c.rt);
		return 2;
	}
	ocapn_runtime_add_netlayer(c.rt, nl);
	if (trace)
		ocapn_runtime_set_trace(c.rt, trace_message, NULL);
	ocapn_vat *vat = ocapn_runtime_vat(c.rt);

	/* Arguments: each in notation. */
	ocapn_arena *arena = ocapn_arena_new(NULL);
	size_t nargs = (size_t)(argc - i);
	ocapn_value *items = ocapn_arena_values(arena, nargs ? nargs : 1);
	ocapn_ref **refs = calloc(nargs ? nargs : 1, sizeof(*refs));
	for (size_t k = 0; k < nargs; k++) {
		const char *text = argv[i + (int)k];
		if (text[0] == '@') {
			/* a reference, by sturdyref */
			rc = ocapn_runtime_enliven_uri(c.rt, text + 1,
			    strlen(text + 1), &refs[k]);
			if (rc) {
				cli_error("call: argument %zu: cannot enliven "
					  "%s: %s",
				    k + 1, text + 1, ocapn_strerror(rc));
				goto arg_fail;
			}
			ocapn_value_set_ref(&items[k], refs[k]);
			continue;
		}
		ocapn_value *v;
		size_t used;
		rc = ocapn_notation_parse(text, strlen(text), arena, &v, &used,
		    &eo, &why);
		if (!rc) {
			size_t rest = used;
			while (text[rest] == ' ' || text[rest] == '\t' ||
			    text[rest] == '\n' || text[rest] == '\r')
				rest++;
			if (text[rest]) {
				rc = OCAPN_E_TRAILING;
				eo = rest;
				why = "more than one value in one argument";
			}
		}
		if (rc) {
			cli_error("call: argument %zu: offset %zu: %s", k + 1,
			    eo, why);
			goto arg_fail;
		}
		items[k] = *v;
	}
	ocapn_value args;
	ocapn_value_set_list(&args, items, nargs);
	/* Pass the objects themselves, not promises for them: wait until
	 * every @URI reference has resolved (one timer for all: a closed
	 * handle's memory must not be reused before its close completes). */
	struct call w = {0};
	w.rt = c.rt;
	uv_timer_init(loop, &w.timer);
	w.timer.data = &w;
	for (size_t k = 0; k < nargs; k++) {
		if (!refs[k])
			continue;
		w.finished = false;
		w.status = 0;
		uv_timer_start(&w.timer, ref_timeout_cb,
		    (uint64_t)(timeout * 1000), 0);
		ocapn_when(refs[k], ref_settled, &w);
		while (!w.finished && uv_run(loop, UV_RUN_ONCE))
			;
		uv_timer_stop(&w.timer);
		const ocapn_value *v;
		if (w.status != 0 ||
		    ocapn_promise_state(refs[k], &v) != OCAPN_OK ||
		    v->kind != OCAPN_REF) {
			cli_error("call: argument %zu: %s", k + 1,
			    w.status == 3 ? "no answer within the timeout"
					  : "the reference is broken");
			uv_close((uv_handle_t *)&w.timer, NULL);
			uv_run(loop, UV_RUN_NOWAIT);
			goto arg_fail;
		}
		ocapn_ref *obj = ocapn_ref_retain(v->u.ref);
		ocapn_ref_release(refs[k]);
		refs[k] = obj;
		ocapn_value_set_ref(&items[k], obj);
	}
	uv_close((uv_handle_t *)&w.timer, NULL);
	uv_run(loop, UV_RUN_NOWAIT);

	ocapn_ref *target, *answer;
	rc = ocapn_locator_copy(ocapn_sturdyref_locator(sr), &c.peer);
	if (!rc)
		rc = ocapn_vat_enliven(vat, sr, &target);
	ocapn_sturdyref_free(sr);
	if (!rc)
		rc = ocapn_send(target, &args, &answer);
	ocapn_arena_free(arena);
	for (size_t k = 0; k < nargs; k++)
		ocapn_ref_release(refs[k]);
	free(refs);
	if (rc) {
		cli_error("call: %s", ocapn_strerror(rc));
		ocapn_runtime_free(c.rt);
		ocapn_locator_free(c.peer);
		return 2;
	}
	ocapn_when(answer, settled, &c);
	uv_timer_init(loop, &c.timer);
	c.timer.data = &c;
	uv_timer_start(&c.timer, timeout_cb, (uint64_t)(timeout * 1000), 0);
	ocapn_runtime_run(c.rt);
	ocapn_ref_release(answer);
	ocapn_ref_release(target);
	ocapn_runtime_free(c.rt);
	ocapn_locator_free(c.peer);
	ocapn_buffer_release(&c.out, NULL);
	return c.finished ? c.status : 2;

arg_fail:
	for (size_t k = 0; k < nargs; k++)
		ocapn_ref_release(refs[k]);
	free(refs);
	ocapn_arena_free(arena);
	ocapn_sturdyref_free(sr);
	ocapn_runtime_free(c.rt);
	return 2;
}

int
cmd_call(int argc, char **argv)
{
	int rc = call_run(argc, argv);
	/* the runtime is freed: our socket file is gone */
	if (shmdir[0])
		rmdir(shmdir);
	return rc;
}
