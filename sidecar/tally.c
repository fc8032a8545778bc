/*
 * tally: per-section and per-peer live counters; see tally.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "util.h"

const int tally_answer_codes[TA_N] = { 400, 430, 503, 513 };

static struct tally *entry_new(enum tally_kind kind, const char *name)
{
	struct tally *e = xcalloc(1, sizeof *e);
	e->kind = kind;
	e->name = xstrdup(name);
	return e;
}

struct tallies *tallies_new(void)
{
	struct tallies *t = xcalloc(1, sizeof *t);
	if (pthread_mutex_init(&t->mu, NULL) != 0)
		abort(); /* only fails for want of memory, fatal like xmalloc */
	t->other = entry_new(TALLY_PEER, "other");
	return t;
}

void tallies_free(struct tallies *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nsec; i++) {
		free(t->sec[i]->name);
		free(t->sec[i]);
	}
	for (size_t i = 0; i < t->npeer; i++) {
		free(t->peer[i]->name);
		free(t->peer[i]);
	}
	free(t->other->name);
	free(t->other);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

struct tally *tally_section(struct tallies *t, enum tally_kind kind, const char *name)
{
	struct tally *e = NULL;
	if (!t || !name)
		return NULL;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nsec && !e; i++)
		if (t->sec[i]->kind == kind && !strcmp(t->sec[i]->name, name))
			e = t->sec[i];
	if (!e && t->nsec < TALLY_MAX_SECTIONS) {
		e = entry_new(kind, name);
		t->sec[t->nsec] = e;
		__atomic_store_n(&t->nsec, t->nsec + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

struct tally *tally_peer(struct tallies *t, const char *identity, size_t max)
{
	struct tally *e = NULL;
	if (!t || !identity || !*identity)
		return NULL;
	if (max > TALLY_MAX_PEERS)
		max = TALLY_MAX_PEERS;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->npeer && !e; i++)
		if (!strcmp(t->peer[i]->name, identity))
			e = t->peer[i];
	if (!e && t->npeer < max && strcmp(identity, "other")) {
		e = entry_new(TALLY_PEER, identity);
		t->peer[t->npeer] = e;
		__atomic_store_n(&t->npeer, t->npeer + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&t->mu);
	return e ? e : t->other;
}

size_t tally_sections(struct tallies *t, struct tally ***v)
{
	*v = t->sec;
	return __atomic_load_n(&t->nsec, __ATOMIC_ACQUIRE);
}

size_t tally_peers(struct tallies *t, struct tally ***v)
{
	*v = t->peer;
	return __atomic_load_n(&t->npeer, __ATOMIC_ACQUIRE);
}

void tally_open(struct tally *e, int64_t now)
{
	if (!e)
		return;
	if (__atomic_fetch_add(&e->open, 1, __ATOMIC_RELAXED) == 0)
		__atomic_store_n(&e->since, now, __ATOMIC_RELAXED);
}

void tally_close(struct tally *e)
{
	if (e)
		__atomic_fetch_sub(&e->open, 1, __ATOMIC_RELAXED);
}

int tally_answer_index(int code)
{
	for (int i = 0; i < TA_N; i++)
		if (tally_answer_codes[i] == code)
			return i;
	return -1;
}
