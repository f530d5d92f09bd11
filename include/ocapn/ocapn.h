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

#endif /* OCAPN_OCAPN_H */
