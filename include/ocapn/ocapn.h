/*
 * libocapn: umbrella header.  Include this one; it pulls in every public
 * part of the library.
 */
#ifndef OCAPN_OCAPN_H
#define OCAPN_OCAPN_H

#include <ocapn/common.h>
#include <ocapn/syrup.h>

/* Peer locators and sturdyrefs. */
#include <ocapn/locator.h>

/* The vat (objects, references, promises) and the CapTP session engine. */
#include <ocapn/vat.h>
#include <ocapn/captp.h>
#include <ocapn/netlayer.h>

/* The runtime on libuv is in <ocapn/runtime.h>, which includes <uv.h>
 * (compile with POSIX definitions, e.g. -D_POSIX_C_SOURCE=200809L). */

#endif /* OCAPN_OCAPN_H */
