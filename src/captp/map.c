/*
 * Small containers of the CapTP layer: a uint64 -> pointer hash map with
 * backward-shift deletion, and fixed-size object pools.
 */
#include "captp_internal.h"

static inline uint64_t
mix(uint64_t x)
{
	/* splitmix64 finaliser: positions are sequential, pointers aligned */
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

void
ocapn__map_init(ocapn__map *m)
{
	m->keys = NULL;
	m->vals = NULL;
	m->cap = 0;
	m->count = 0;
}

void
ocapn__map_free(ocapn__map *m, const ocapn_allocator *a)
{
	ocapn__free(a, m->keys, m->cap * sizeof(*m->keys));
	ocapn__free(a, m->vals, m->cap * sizeof(*m->vals));
	ocapn__map_init(m);
}

void *
ocapn__map_get(const ocapn__map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)mix(key) & mask;; i = (i + 1) & mask) {
		if (!m->vals[i])
			return NULL;
		if (m->keys[i] == key)
			return m->vals[i];
	}
}

static int
rehash(ocapn__map *m, const ocapn_allocator *a, size_t ncap)
{
	uint64_t *nk = ocapn__malloc(a, ncap * sizeof(*nk));
	void **nv = ocapn__calloc(a, ncap * sizeof(*nv));
	if (!nk || !nv) {
		ocapn__free(a, nk, ncap * sizeof(*nk));
		ocapn__free(a, nv, ncap * sizeof(*nv));
		return OCAPN_E_NOMEM;
	}
	size_t mask = ncap - 1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->vals[i])
			continue;
		size_t j = (size_t)mix(m->keys[i]) & mask;
		while (nv[j])
			j = (j + 1) & mask;
		nk[j] = m->keys[i];
		nv[j] = m->vals[i];
	}
	ocapn__free(a, m->keys, m->cap * sizeof(*m->keys));
	ocapn__free(a, m->vals, m->cap * sizeof(*m->vals));
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	return OCAPN_OK;
}

int
ocapn__map_put(ocapn__map *m, const ocapn_allocator *a, uint64_t key,
    void *val)
{
	if ((m->count + 1) * 4 > m->cap * 3) {
		size_t ncap = m->cap ? m->cap * 2 : 16;
		if (rehash(m, a, ncap))
			return OCAPN_E_NOMEM;
	}
	size_t mask = m->cap - 1;
	size_t i = (size_t)mix(key) & mask;
	while (m->vals[i]) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return OCAPN_OK;
		}
		i = (i + 1) & mask;
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
	return OCAPN_OK;
}

void *
ocapn__map_del(ocapn__map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	size_t i = (size_t)mix(key) & mask;
	while (m->vals[i] && m->keys[i] != key)
		i = (i + 1) & mask;
	if (!m->vals[i])
		return NULL;
	void *old = m->vals[i];
	/* Backward shift: move later entries of the cluster into the hole
	 * when their home slot does not lie cyclically in (hole, j]. */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
		size_t home = (size_t)mix(m->keys[j]) & mask;
		bool in_range = hole <= j ? (home > hole && home <= j)
					  : (home > hole || home <= j);
		if (!in_range) {
			m->keys[hole] = m->keys[j];
			m->vals[hole] = m->vals[j];
			hole = j;
		}
	}
	m->vals[hole] = NULL;
	m->count--;
	return old;
}

void *
ocapn__pool_get(ocapn__pool *p, const ocapn_allocator *a)
{
	void *it = p->free;
	if (it) {
		memcpy(&p->free, it, sizeof(void *));
		p->nfree--;
		return it;
	}
	return ocapn__malloc(a, p->size);
}

void
ocapn__pool_put(ocapn__pool *p, void *item)
{
	memcpy(item, &p->free, sizeof(void *));
	p->free = item;
	p->nfree++;
}

void
ocapn__pool_drain(ocapn__pool *p, const ocapn_allocator *a)
{
	while (p->free) {
		void *it = p->free;
		memcpy(&p->free, it, sizeof(void *));
		ocapn__free(a, it, p->size);
	}
	p->nfree = 0;
}
