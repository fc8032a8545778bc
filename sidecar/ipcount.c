/*
 * ipcount: a hash table of (listener port, peer address) -> open
 * connections, under one mutex (taken once per accept and per close).
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipcount.h"

#define NBUCKETS 1024 /* a power of two */
#define KEYMAX 20

struct ipslot {
	struct ipslot *next;
	unsigned long n;
	size_t bucket;
	uint8_t klen;
	uint8_t key[KEYMAX];
};

struct ipcount {
	pthread_mutex_t mu;
	struct ipslot *tab[NBUCKETS];
};

struct ipcount *ipcount_new(void)
{
	struct ipcount *t = xcalloc(1, sizeof *t);
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

void ipcount_free(struct ipcount *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < NBUCKETS; i++)
		while (t->tab[i]) {
			struct ipslot *s = t->tab[i];
			t->tab[i] = s->next;
			free(s);
		}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* family, the listener's port, the peer's address bytes (no peer port) */
static size_t make_key(const struct addr *bind, const struct addr *peer, uint8_t *k)
{
	size_t n = 0;
	uint16_t lport = 0;
	if (bind->ss.ss_family == AF_INET)
		lport = ((const struct sockaddr_in *)&bind->ss)->sin_port;
	else if (bind->ss.ss_family == AF_INET6)
		lport = ((const struct sockaddr_in6 *)&bind->ss)->sin6_port;
	k[n++] = (uint8_t)peer->ss.ss_family;
	memcpy(k + n, &lport, 2);
	n += 2;
	if (peer->ss.ss_family == AF_INET) {
		memcpy(k + n, &((const struct sockaddr_in *)&peer->ss)->sin_addr, 4);
		n += 4;
	} else if (peer->ss.ss_family == AF_INET6) {
		memcpy(k + n, &((const struct sockaddr_in6 *)&peer->ss)->sin6_addr, 16);
		n += 16;
	}
	return n;
}

static size_t hash(const uint8_t *k, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32)) & (NBUCKETS - 1);
}

struct ipslot *ipcount_take(struct ipcount *t, const struct addr *bind, const struct addr *peer, unsigned long max,
			    unsigned long *open)
{
	uint8_t k[KEYMAX];
	size_t n = make_key(bind, peer, k), b = hash(k, n);
	struct ipslot *s;
	pthread_mutex_lock(&t->mu);
	for (s = t->tab[b]; s; s = s->next)
		if (s->klen == n && !memcmp(s->key, k, n))
			break;
	if (s && max && s->n >= max) {
		*open = s->n;
		pthread_mutex_unlock(&t->mu);
		return NULL;
	}
	if (!s) {
		s = xcalloc(1, sizeof *s);
		memcpy(s->key, k, n);
		s->klen = (uint8_t)n;
		s->bucket = b;
		s->next = t->tab[b];
		t->tab[b] = s;
	}
	s->n++;
	*open = s->n;
	pthread_mutex_unlock(&t->mu);
	return s;
}

void ipcount_put(struct ipcount *t, struct ipslot *s)
{
	pthread_mutex_lock(&t->mu);
	if (--s->n == 0) {
		struct ipslot **p = &t->tab[s->bucket];
		while (*p && *p != s)
			p = &(*p)->next;
		if (*p)
			*p = s->next;
		free(s);
	}
	pthread_mutex_unlock(&t->mu);
}
