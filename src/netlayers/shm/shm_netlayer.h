/*
 * Internal interface of the shm netlayer (shm_netlayer.c), for the tests
 * and the benchmark.  The public constructor and settings are in
 * include/ocapn/runtime.h.  Never installed.
 */
#ifndef OCAPN_SHM_NETLAYER_H
#define OCAPN_SHM_NETLAYER_H

#include <ocapn/runtime.h>

#include "shm_linux.h"

/*
 * Inbound connections refused before they were reported to the handler
 * (channel handshake or designator authentication failed, timed out, too
 * many at once): how many so far, and the reason of the last one (owned
 * by the netlayer, valid until the next refusal).
 */
uint64_t ocapn__shm_nl_refused(const ocapn_netlayer *nl, const char **last);

/* Channel parameters for connections made from now on (tests use small
 * rings).  The authentication hook is the netlayer's own. */
void ocapn__shm_nl_set_params(ocapn_netlayer *nl,
    const struct ocapn__shm_params *p);

/* Spins so far and how many found work (for the benchmark). */
void ocapn__shm_nl_spin_stats(const ocapn_netlayer *nl, uint64_t *spins,
    uint64_t *hits);

#endif
