/*
 * The objects the public OCapN conformance suite expects a peer to serve
 * (ocapn/ocapn-test-suite README), as local objects of a vat.  Used by
 * `ocapn serve-testsuite`, the demo and the tests.
 */
#ifndef SUITE_OBJECTS_H
#define SUITE_OBJECTS_H

#include <ocapn/ocapn.h>

/* Swiss numbers (ASCII bytes) and names, in the suite's order. */
struct suite_object {
	const char *name;
	const char *swiss;
};
extern const struct suite_object suite_objects[];
extern const size_t suite_object_count;

/* Spawn every suite object in `vat` and register it under its swiss
 * number.  OCAPN_OK or the first error. */
int suite_register(ocapn_vat *vat);

/* Individual constructors (one reference returned). */
int suite_car_factory_builder(ocapn_vat *vat, ocapn_ref **out);
int suite_echo(ocapn_vat *vat, ocapn_ref **out);

#endif
