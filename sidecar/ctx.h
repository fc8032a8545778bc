/*
 * ctx: the daemon's single runtime context and its listening sockets.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_CTX_H
#define SIDECAR_CTX_H

#include <ev.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "tls.h"
#include "util.h"

struct conn;
struct flowc;
struct xmsg;
struct resolver;
struct ipcount;

enum lsock_kind { LSOCK_LISTEN, LSOCK_CONNECT };

/*
 * A listening socket. Lives outside generations, keyed by kind and bind
 * address, so an unchanged listener keeps its socket across reloads.
 */
struct lsock {
	struct lsock *next;
	struct sidecar *sc;
	enum lsock_kind kind;
	struct addr bind;
	char *name;                 /* section name in the current generation */
	size_t idx;                 /* section index in the current generation */
	int fd;
	ev_io io;
	ev_timer pause;             /* accept paused: out of descriptors */
	int keep;                   /* reload bookkeeping */
};

/* The newest TLS session data from a [connect]'s server. */
struct ticket {
	char *name;                 /* the [connect] section */
	gnutls_datum_t data;
};

/* Counters for logs and metrics. */
struct stats {
	uint64_t accepted, handshakes, resumed, refused, closed;
	uint64_t bytes_in, bytes_out, msgs_in, msgs_out;
	uint64_t reloads_ok, reloads_failed;
	uint64_t refused_by_reason[32]; /* indexed like metrics_reasons */
	uint64_t answers[4];            /* written by the sidecar itself, indexed like tally_answer_codes */
};

/* Adds n to a counter of a loop's stats: one writer (that loop), read by
 * metrics from the main thread, so relaxed atomic loads and stores. */
static inline void st_add(uint64_t *f, uint64_t n)
{
	__atomic_store_n(f, __atomic_load_n(f, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

typedef int (*worker_fn)(struct sidecar *w, void *arg);

/*
 * The daemon's runtime context: the only mutable state it has. With one
 * worker, one context does everything on the default loop. With N workers,
 * the main context keeps signals, reloads, metrics and systemd on the
 * default loop, and each worker thread has a context of its own (loop,
 * listening sockets bound with SO_REUSEPORT, connections, buffers, counters)
 * that the main context reaches only through worker_call().
 */
struct sidecar {
	struct ev_loop *loop;
	const char *conf_path;
	struct gen *gen;            /* current generation */
	unsigned long next_gen_id;
	struct lsock *lsocks;
	struct conn *conns;         /* every open connection */
	unsigned long nconns;
	char *scratch;              /* one read buffer for the whole loop */
	size_t scratch_size;
	/* TLS read-ahead: one recv() fetches a whole record (or several)
	 * instead of GnuTLS's header-then-body pair of reads. Bytes GnuTLS did
	 * not take yet wait here for the connection that read them, and move
	 * to that connection's own buffer before the loop runs anything else. */
	char *ra;
	uint32_t ra_off, ra_len;
	struct conn *ra_owner;
	struct conn *corked;        /* its answers wait for the end of its read pass (coalesced) */
	gnutls_datum_t ticket_key;  /* TLS session ticket master key (rotated by GnuTLS) */
	ev_signal sighup, sigterm, sigint;
	ev_timer stop_timer, watchdog, daily;
	double stop_deadline;
	int stopping;
	int exit_code;
	double last_refuse_log;
	unsigned long refuse_suppressed;
	unsigned long bsrc_next;    /* round robin over backend-source addresses */
	char last_reload[256];
	time_t loaded_at;           /* main: when the configuration in force was loaded */
	struct stats st;
	struct resolver *resolver;
	struct metrics *metrics;
	struct status *status;      /* main only: status socket and refusal history */
	struct tallies *tallies;    /* main's, shared by every loop (tally.h) */
	int is_root_ok;
	/* workers */
	struct sidecar **workers;   /* main: the contexts that accept (itself when one) */
	struct sidecar *workers_first; /* workers[0], known to each worker */
	struct sidecar *main_ctx;   /* the main context (itself when one worker) */
	/* main only: the newest session from each [connect]'s server, shared by
	 * the workers so that a reconnect resumes whichever worker takes it */
	pthread_mutex_t tickets_mu;
	struct ticket *tickets;
	size_t ntickets;
	/* main only: listening sockets passed by systemd socket activation,
	 * used instead of binding when their address matches */
	int inherited[16];
	int ninherited;
	unsigned nworkers;
	unsigned long *total_conns; /* shared count for max-connections (atomic) */
	unsigned long total_conns_store;
	unsigned long *total_peers; /* shared count of verified peers' connections (atomic) */
	struct ipcount *ipcount;    /* main only: open connections per listener and address */
	unsigned long total_peers_store;
	ev_timer status_timer;      /* main: STATUS= to systemd */
	char status_sent[512];
	int reuseport;              /* listening sockets use SO_REUSEPORT */
	int threaded;               /* this context runs in a thread of its own */
	pthread_t thread;
	ev_async call_async;
	pthread_mutex_t call_mu;
	pthread_cond_t call_cv;
	worker_fn call_fn;
	void *call_arg;
	int call_done, call_rc;
	/* flows (siptopo.h): this loop's loopback listener where the legacy
	 * server reaches TLS clients by their flow tokens, the connections it
	 * accepted, and the table of this loop's flows by id */
	unsigned char flow_key[TOPO_KEY_LEN]; /* main only: per-start HMAC key */
	struct topo_key flow_kctx;            /* main only: that key, prepared */
	int flow_fd;
	ev_io flow_io;
	ev_timer flow_pause;        /* accept paused: out of descriptors */
	unsigned flow_port;
	uint64_t flow_serial;
	struct conn **flow_tab;
	struct flowc *flowcs;
	struct topo_out topo_buf;   /* one translated message at a time */
	struct topo_out topo_buf2;
	/* messages other loops route to this loop's flows */
	pthread_mutex_t xq_mu;
	struct xmsg *xq_head, *xq_tail;
	ev_async xq_async;
	int xq_on;
};

#endif
