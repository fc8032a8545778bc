/*
 * tally: live counters per [listen]/[connect] section and per verified peer
 * identity, shared by every loop. A connection looks its two tallies up once
 * (section when it is accepted, peer when its identity is admitted) under a
 * lock; after that it only adds to them with relaxed atomics, and the
 * metrics page and the status socket read them from the main thread.
 * Entries are never freed while the daemon runs, so the pointers stay good.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_TALLY_H
#define SIDECAR_TALLY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define TALLY_NREASONS 32         /* room for every reason word (metrics.h) */
#define TALLY_MAX_SECTIONS 1024   /* distinct section names ever seen */
#define TALLY_MAX_PEERS 10000     /* upper bound of metrics-peers */

enum tally_kind { TALLY_LISTEN, TALLY_CONNECT, TALLY_PEER };

/* Answers the sidecar writes itself, counted by status code. */
enum tally_answer { TA_400, TA_430, TA_503, TA_513, TA_N };
extern const int tally_answer_codes[TA_N];

struct tally {
	char *name;                 /* section name or peer identity ("other") */
	enum tally_kind kind;
	uint64_t open;              /* open connections (gauge) */
	uint64_t accepted, handshakes, resumed;
	uint64_t bytes_in, bytes_out;   /* from / to the TLS peer */
	uint64_t msgs_in, msgs_out;     /* SIP messages from / to the TLS peer */
	uint64_t backend_failures;      /* the legacy server could not be reached */
	uint64_t refused[TALLY_NREASONS];
	uint64_t answers[TA_N];
	int64_t since;              /* peers: when open last went from 0 to 1 (wall clock) */
};

struct tallies {
	pthread_mutex_t mu;         /* taken to find or add an entry, never to count */
	struct tally *sec[TALLY_MAX_SECTIONS];
	struct tally *peer[TALLY_MAX_PEERS];
	size_t nsec, npeer;         /* published with release stores */
	struct tally *other;        /* peers past the bound */
};

struct tallies *tallies_new(void);
void tallies_free(struct tallies *t);
/* The section's entry (added when new), or NULL when the table is full. */
struct tally *tally_section(struct tallies *t, enum tally_kind kind, const char *name);
/* The peer's entry: its own while fewer than max peers have one, else
 * the shared "other" entry. */
struct tally *tally_peer(struct tallies *t, const char *identity, size_t max);
/* Snapshots of the published entries (readers, any thread). */
size_t tally_sections(struct tallies *t, struct tally ***v);
size_t tally_peers(struct tallies *t, struct tally ***v);

/* Adds n to counter FIELD of entry e, when there is an entry (a NULL e:
 * no table room, or no peer: nothing, and no address formed from it). */
#define tally_add(e, field, n)                                                   \
	do {                                                                     \
		struct tally *tally_e_ = (e);                                    \
		if (tally_e_)                                                    \
			__atomic_fetch_add(&tally_e_->field, (n), __ATOMIC_RELAXED); \
	} while (0)
static inline uint64_t tally_get(const uint64_t *f)
{
	return __atomic_load_n(f, __ATOMIC_RELAXED);
}
/* One more / one fewer open connection (peers: keeps since). */
void tally_open(struct tally *e, int64_t now);
void tally_close(struct tally *e);
/* Index of a status code in answers[], or -1. */
int tally_answer_index(int code);

#endif
