/*
 * Conformance-suite objects.  Behaviour follows the suite's README and
 * tests (ocapn/ocapn-test-suite): objects take positional arguments, not
 * method names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite_objects.h"

const struct suite_object suite_objects[] = {
    {"car-factory-builder", "JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ"},
    {"echo-gc", "IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"},
    {"greeter", "VMDDd1voKWarCe2GvgLbxbVFysNzRPzx"},
    {"promise-resolver", "IokCxYmMj04nos2JN1TDoY1bT8dXh6Lr"},
    {"sturdyref-enlivener", "gi02I1qghIwPiKGKleCQAOhpy3ZtYRpB"},
    /* Not a suite object: forwards [REF ARG...] as REF <- ARG... and
     * answers with REF's answer; lets `ocapn call` show a third-party
     * handoff end to end. */
    {"relay", "libocapn-relay-3pH3hmJ9vQnC7sWe"},
};
const size_t suite_object_count =
    sizeof(suite_objects) / sizeof(suite_objects[0]);

/* ---- car ---------------------------------------------------------- */

struct car {
	char *text; /* "Vroom! I am a <color> <model> car!" */
};

static void
car_free(void *user)
{
	struct car *c = user;
	free(c->text);
	free(c);
}

static int
car_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	struct car *c = user;
	(void)vat;
	(void)self;
	(void)args;
	if (!resolver)
		return OCAPN_OK;
	ocapn_value v;
	ocapn_value_set_string(&v, c->text, strlen(c->text));
	return ocapn_resolve(resolver, &v);
}

static int
spec_text(const ocapn_value *spec, const ocapn_value **color,
    const ocapn_value **model)
{
	if (spec->kind != OCAPN_LIST || spec->len != 2)
		return -1;
	*color = &spec->u.items[0];
	*model = &spec->u.items[1];
	if (((*color)->kind != OCAPN_SYMBOL &&
		(*color)->kind != OCAPN_STRING) ||
	    ((*model)->kind != OCAPN_SYMBOL && (*model)->kind != OCAPN_STRING))
		return -1;
	return 0;
}

static int
new_car(ocapn_vat *vat, const ocapn_value *color, const ocapn_value *model,
    ocapn_ref **out)
{
	struct car *c = calloc(1, sizeof(*c));
	if (!c)
		return OCAPN_E_NOMEM;
	size_t n = 32 + color->len + model->len;
	c->text = malloc(n);
	if (!c->text) {
		free(c);
		return OCAPN_E_NOMEM;
	}
	snprintf(c->text, n, "Vroom! I am a %.*s %.*s car!", (int)color->len,
	    (const char *)color->u.p, (int)model->len,
	    (const char *)model->u.p);
	int rc = ocapn_vat_spawn(vat, car_call, c, car_free, out);
	if (rc)
		car_free(c);
	return rc;
}

/* ---- car factory --------------------------------------------------- */

static int
factory_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)user;
	if (!resolver)
		return OCAPN_OK;
	size_t n = args->len;
	if (n == 0)
		return ocapn_break_str(resolver,
		    "car factory: expected one or more [color model] specs");
	for (size_t i = 0; i < n; i++) {
		const ocapn_value *c, *m;
		if (spec_text(&args->u.items[i], &c, &m))
			return ocapn_break_str(resolver,
			    "car factory: each spec must be [color model]");
	}
	ocapn_value *cars = ocapn_arena_values(ocapn_vat_arena(vat), n);
	ocapn_ref **refs = calloc(n, sizeof(*refs));
	if (!cars || !refs) {
		free(refs);
		return OCAPN_E_NOMEM;
	}
	int rc = OCAPN_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		const ocapn_value *c = NULL, *m = NULL;
		spec_text(&args->u.items[i], &c, &m);
		rc = new_car(vat, c, m, &refs[i]);
		if (!rc)
			ocapn_value_set_ref(&cars[i], refs[i]);
	}
	if (!rc) {
		ocapn_value result;
		if (n == 1)
			result = cars[0];
		else
			ocapn_value_set_list(&result, cars, n);
		rc = ocapn_resolve(resolver, &result);
	}
	for (size_t i = 0; i < n; i++)
		ocapn_ref_release(refs[i]);
	free(refs);
	return rc;
}

static int
builder_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)user;
	(void)args;
	if (!resolver)
		return OCAPN_OK;
	ocapn_ref *factory;
	int rc = ocapn_vat_spawn(vat, factory_call, NULL, NULL, &factory);
	if (rc)
		return rc;
	ocapn_value v;
	ocapn_value_set_ref(&v, factory);
	rc = ocapn_resolve(resolver, &v);
	ocapn_ref_release(factory);
	return rc;
}

int
suite_car_factory_builder(ocapn_vat *vat, ocapn_ref **out)
{
	return ocapn_vat_spawn(vat, builder_call, NULL, NULL, out);
}

/* ---- echo-gc ------------------------------------------------------- */

static int
echo_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)user;
	if (!resolver)
		return OCAPN_OK;
	return ocapn_resolve(resolver, args);
}

int
suite_echo(ocapn_vat *vat, ocapn_ref **out)
{
	return ocapn_vat_spawn(vat, echo_call, NULL, NULL, out);
}

/* ---- greeter ------------------------------------------------------- */

static int
greeter_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)user;
	if (args->len != 1 || args->u.items[0].kind != OCAPN_REF) {
		if (resolver)
			return ocapn_break_str(resolver,
			    "greeter: expected one reference");
		return OCAPN_OK;
	}
	ocapn_value hello;
	ocapn_value_set_string(&hello, "Hello", 5);
	ocapn_value list;
	ocapn_value_set_list(&list, &hello, 1);
	/* A real call (answer position and resolver), whose answer we drop
	 * at once so the peer sees the answer collected. */
	ocapn_ref *answer = NULL;
	int rc = ocapn_send(args->u.items[0].u.ref, &list, &answer);
	ocapn_ref_release(answer);
	(void)vat;
	if (resolver) {
		ocapn_value t;
		ocapn_value_set_bool(&t, true);
		ocapn_resolve(resolver, &t);
	}
	return rc;
}

/* ---- promise-resolver ----------------------------------------------- */

static int
promise_resolver_call(ocapn_vat *vat, ocapn_ref *self,
    const ocapn_value *args, ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)user;
	(void)args;
	if (!resolver)
		return OCAPN_OK;
	ocapn_ref *p, *r;
	int rc = ocapn_vat_promise(vat, &p, &r);
	if (rc)
		return rc;
	ocapn_value pair[2], v;
	ocapn_value_set_ref(&pair[0], p);
	ocapn_value_set_ref(&pair[1], r);
	ocapn_value_set_list(&v, pair, 2);
	rc = ocapn_resolve(resolver, &v);
	ocapn_ref_release(p);
	ocapn_ref_release(r);
	return rc;
}

/* ---- sturdyref-enlivener -------------------------------------------- */

static int
enlivener_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)user;
	/* Enliven even when no answer is wanted (the suite sends
	 * op:deliver-only): reaching the peer is the point. */
	const char *why = "sturdyref-enlivener: expected one sturdyref";
	ocapn_sturdyref *sr = NULL;
	int rc = args->len == 1
	    ? ocapn_sturdyref_from_value(&args->u.items[0], NULL, &sr, &why)
	    : OCAPN_E_INVAL;
	if (rc)
		return resolver ? ocapn_break_str(resolver,
				      why ? why : "not a sturdyref")
				: OCAPN_OK;
	ocapn_ref *obj;
	rc = ocapn_vat_enliven(vat, sr, &obj);
	ocapn_sturdyref_free(sr);
	if (rc)
		return resolver ? ocapn_break_str(resolver, ocapn_strerror(rc))
				: OCAPN_OK;
	if (resolver) {
		ocapn_value v;
		ocapn_value_set_ref(&v, obj);
		rc = ocapn_resolve(resolver, &v);
	}
	ocapn_ref_release(obj);
	return rc;
}

/* ---- relay (libocapn's own) ---------------------------------------- */

static int
relay_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)user;
	if (args->len < 1 || args->u.items[0].kind != OCAPN_REF)
		return resolver ? ocapn_break_str(resolver,
				      "relay: expected a reference first")
				: OCAPN_OK;
	ocapn_value rest;
	ocapn_value_set_list(&rest, args->u.items + 1, args->len - 1);
	ocapn_ref *answer = NULL;
	int rc = ocapn_send(args->u.items[0].u.ref, &rest,
	    resolver ? &answer : NULL);
	if (!rc && resolver) {
		ocapn_value v;
		ocapn_value_set_ref(&v, answer);
		rc = ocapn_resolve(resolver, &v);
	}
	ocapn_ref_release(answer);
	return rc;
}

int
suite_register(ocapn_vat *vat)
{
	static const ocapn_method_fn fns[] = {builder_call, echo_call,
	    greeter_call, promise_resolver_call, enlivener_call, relay_call};
	for (size_t i = 0; i < suite_object_count; i++) {
		ocapn_ref *obj;
		int rc = ocapn_vat_spawn(vat, fns[i], NULL, NULL, &obj);
		if (rc)
			return rc;
		const char *sw = suite_objects[i].swiss;
		rc = ocapn_vat_register(vat, (const uint8_t *)sw, strlen(sw),
		    obj);
		ocapn_ref_release(obj);
		if (rc)
			return rc;
	}
	return OCAPN_OK;
}
