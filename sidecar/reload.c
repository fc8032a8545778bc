/*
 * reload: building, checking and swapping generations.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "flow.h"
#include "fdlimit.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "reload.h"
#include "tickets.h"
#include "sdnotify.h"
#include "workers.h"

#define EXPIRY_WARN_DAYS 30

void sidecar_expiry_report(struct sidecar *sc)
{
	struct diag w = { 0 }, e = { 0 };
	gen_expiry_check(sc->gen, EXPIRY_WARN_DAYS, &w, &e);
	for (size_t i = 0; i < e.n; i++)
		log_err("%s", e.msg[i]);
	for (size_t i = 0; i < w.n; i++)
		log_warn("%s", w.msg[i]);
	diag_free(&w);
	diag_free(&e);
}

/* Builds a generation from the configuration file; NULL with d filled. */
static struct gen *build(struct sidecar *sc, struct diag *d)
{
	struct diag w = { 0 };
	struct config *cfg = config_load(sc->conf_path, d);
	if (!cfg)
		return NULL;
	limits_clamp(cfg, 0, &w);
	struct gen *g = gen_build(cfg, d, &w);
	if (g && sc->gen && (strcmp(g->cfg->flow_host, sc->gen->cfg->flow_host) ||
			     g->cfg->flow_port != sc->gen->cfg->flow_port)) {
		/* the flow listeners stay where they are until a restart */
		log_warn("%s: flow-bind changes take effect at restart", g->cfg->file);
		free(g->cfg->flow_host);
		g->cfg->flow_host = xstrdup(sc->gen->cfg->flow_host);
		g->cfg->flow_port = sc->gen->cfg->flow_port;
		gen_set_flow_host(g);
	}
	if (g)
		gen_set_flow_key(g, &sc->flow_kctx);
	if (g && g->tkeys)
		log_info("ticket keys: %zu from %s, the newest (line %u) seals new tickets", g->tkeys->n,
			 g->cfg->ticket_key_file, g->tkeys->line[g->tkeys->n - 1]);
	for (size_t i = 0; i < w.n; i++)
		log_warn("%s", w.msg[i]);
	diag_free(&w);
	return g;
}

/* What a reload hands each worker. */
struct apply {
	struct gen *g;
	struct diag *d;
	char *what;          /* worker 0 describes listener changes here */
	size_t whatsz;
	unsigned long dropped;
};

/* In the worker: binds what g adds (phase 1). */
static int prepare_fn(struct sidecar *w, void *arg)
{
	struct apply *a = arg;
	return listeners_prepare(w, a->g, a->d);
}

/* In the worker: undoes phase 1 (another worker failed). */
static int rollback_fn(struct sidecar *w, void *arg)
{
	(void)arg;
	listeners_rollback(w);
	return 0;
}

/* In the worker: g becomes current (phase 2), listeners follow, and
 * established MTLS connections answer to the new trust (caller 3). */
static int commit_fn(struct sidecar *w, void *arg)
{
	struct apply *a = arg;
	struct gen *old = w->gen;
	int first = w == w->workers_first;
	gen_ref(a->g);
	w->gen = a->g;
	listeners_commit(w, first, first ? a->what : NULL, a->whatsz);
	for (struct conn *c = w->conns, *next; old && c; c = next) {
		next = c->next;
		if (c->hs_done && (c->role == ROLE_OUT || c->gen->cfg->listen[c->idx].client_auth != CLIENT_AUTH_NONE))
			a->dropped += conn_recheck(c) < 0;
	}
	gen_unref(old);
	return 0;
}

/*
 * Makes g current everywhere, all or nothing: every worker binds its new
 * sockets first; if one cannot, all roll back and nothing changes. Takes
 * over the caller's reference to g on success. Returns 0 or -1 (d filled).
 */
static int apply_all(struct sidecar *sc, struct gen *g, struct diag *d, char *what, size_t whatsz,
		     unsigned long *dropped)
{
	struct apply a = { g, d, what, whatsz, 0 };
	unsigned i;
	for (i = 0; i < sc->nworkers; i++)
		if (worker_call(sc->workers[i], prepare_fn, &a) < 0)
			break;
	if (i < sc->nworkers) {
		while (i-- > 0)
			worker_call(sc->workers[i], rollback_fn, NULL);
		return -1;
	}
	for (i = 0; i < sc->nworkers; i++)
		worker_call(sc->workers[i], commit_fn, &a);
	if (sc->workers[0] == sc) {
		gen_unref(g); /* commit_fn took the context's own reference */
	} else {
		struct gen *old = sc->gen;
		sc->gen = g;
		gen_unref(old);
	}
	if (dropped)
		*dropped = a.dropped;
	return 0;
}

/* In each worker: its flow listener. */
struct flow_arg {
	const struct config *cfg;
	unsigned port;
};

static int flow_start_fn(struct sidecar *w, void *arg)
{
	struct flow_arg *a = arg;
	return flow_start(w, a->cfg, a->port);
}

int sidecar_load_initial(struct sidecar *sc)
{
	struct diag d = { 0 };
	struct gen *g = build(sc, &d);
	if (g) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		unsigned n = g->cfg->workers ? (unsigned)g->cfg->workers : cpus > 0 ? (unsigned)cpus : 1;
		if (workers_start(sc, n) < 0) {
			gen_unref(g);
			return -1;
		}
		g->id = ++sc->next_gen_id;
		if (apply_all(sc, g, &d, NULL, 0, NULL) < 0) {
			gen_unref(g);
			g = NULL;
		}
		for (unsigned i = 0; g && i < sc->nworkers; i++) {
			const struct config *cfg = sc->gen->cfg;
			struct flow_arg fa = { cfg, cfg->flow_port ? cfg->flow_port + i : 0 };
			if (worker_call(sc->workers[i], flow_start_fn, &fa) < 0)
				return -1;
		}
	}
	if (!g) {
		for (size_t i = 0; i < d.n; i++)
			log_err("%s", d.msg[i]);
		diag_free(&d);
		return -1;
	}
	log_set_level(sc->gen->cfg->log_level);
	sc->loaded_at = time(NULL);
	if (sc->nworkers > 1)
		log_info("%u workers, each with its own event loop", sc->nworkers);
	if (metrics_apply(sc, &d) < 0) {
		log_err("%s", d.msg[0]);
		diag_free(&d);
		return -1;
	}
	status_init(sc);
	status_apply(sc);
	sidecar_expiry_report(sc);
	return 0;
}

/* Describes what changed between two generations' certificates. */
static void describe_certs(const struct gen *old, const struct gen *g, char *what, size_t whatsz)
{
	for (size_t i = 0; i < g->ncerts; i++) {
		const struct certinfo *ci = &g->certs[i];
		if (strcmp(ci->kind, "certificate"))
			continue;
		int same = 0;
		for (size_t j = 0; j < old->ncerts && !same; j++)
			same = !strcmp(old->certs[j].kind, "certificate") && !strcmp(old->certs[j].file, ci->file) &&
			       !strcmp(old->certs[j].serial, ci->serial);
		if (same)
			continue;
		char when[32] = "?";
		if (ci->not_after > 0)
			strftime(when, sizeof when, "%Y-%m-%d", gmtime(&ci->not_after));
		size_t n = strlen(what);
		snprintf(what + n, whatsz - n, "%scertificate %s serial %s expires %s", n ? "; " : "", ci->file,
			 ci->serial, when);
	}
	size_t nca = 0;
	for (size_t i = 0; i < g->ncerts; i++)
		nca += !strcmp(g->certs[i].kind, "CA") || !strcmp(g->certs[i].kind, "CRL");
	size_t oca = 0;
	for (size_t i = 0; i < old->ncerts; i++)
		oca += !strcmp(old->certs[i].kind, "CA") || !strcmp(old->certs[i].kind, "CRL");
	size_t n = strlen(what);
	snprintf(what + n, whatsz - n, "%s%zu CA/CRL entries (was %zu)", n ? "; " : "", nca, oca);
}

int sidecar_reload(struct sidecar *sc)
{
	struct diag d = { 0 };
	char what[1024] = "";
	sdn_reloading();
	struct gen *g = build(sc, &d);
	struct gen *old = sc->gen;
	unsigned long dropped = 0;
	gen_ref(old); /* for describing what changed */
	if (g) {
		g->id = sc->next_gen_id + 1;
		if (apply_all(sc, g, &d, what, sizeof what, &dropped) < 0) {
			gen_unref(g);
			g = NULL;
		}
	}
	if (!g) {
		gen_unref(old);
		st_add(&sc->st.reloads_failed, 1);
		log_err("reload failed: %s%s", d.n ? d.msg[0] : "unknown error",
			d.n > 1 ? " (and more problems below)" : "");
		for (size_t i = 1; i < d.n; i++)
			log_err("reload failed: %s", d.msg[i]);
		snprintf(sc->last_reload, sizeof sc->last_reload, "reload failed: %s", d.n ? d.msg[0] : "?");
		sdn_notifyf("READY=1\nSTATUS=%s", sc->last_reload);
		diag_free(&d);
		return -1;
	}
	sc->next_gen_id = g->id;
	log_set_level(g->cfg->log_level);
	if (metrics_apply(sc, &d) < 0)
		log_err("%s (metrics keep their old address)", d.msg[0]);
	diag_free(&d);
	status_apply(sc);
	describe_certs(old, g, what, sizeof what);
	gen_unref(old);
	st_add(&sc->st.reloads_ok, 1);
	sc->loaded_at = time(NULL);
	log_info("reload ok: generation %lu; %s%s", g->id, what,
		 dropped ? "; peers no longer trusted were disconnected" : "");
	snprintf(sc->last_reload, sizeof sc->last_reload, "reload ok: generation %lu", g->id);
	sidecar_expiry_report(sc);
	sdn_notifyf("READY=1\nSTATUS=%s", sc->last_reload);
	return 0;
}
