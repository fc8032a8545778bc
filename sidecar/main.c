/*
 * sip-sidecar: TLS and MTLS transport for an unmodified legacy SIP server.
 * main: command line, start-up order, signals, privileges, the event loop.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "conn.h"
#include "flow.h"
#include "ipcount.h"
#include "fdlimit.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "rsasign.h"
#include "resolver.h"
#include "sdnotify.h"
#include "status.h"
#include "tally.h"
#include "workers.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF SYSCONFDIR "/sip-sidecar/sip-sidecar.conf"

static void usage(FILE *out)
{
	fprintf(out, "usage: sip-sidecar [-c FILE] [-t] [-V] [-h]\n"
		     "       sip-sidecar status [-c FILE] [--json]\n"
		     "  -c FILE   configuration file (default: %s)\n"
		     "  -t        check the configuration and every certificate, key, CA and CRL; exit 0 if usable\n"
		     "  -V        print the version and the GnuTLS/libev versions\n"
		     "  -h        this help\n"
		     "  status    show the running daemon's listeners, peers, refusals and certificates\n",
		DEFAULT_CONF);
}

/* -t: parse, load every file, report each problem as FILE:LINE: message. */
static int check_config(const char *path)
{
	struct diag d = { 0 }, w = { 0 };
	struct config *cfg = config_load(path, &d);
	if (cfg)
		limits_clamp(cfg, 1, &w); /* the daemon raises its soft limit to the hard one */
	struct gen *g = cfg ? gen_build(cfg, &d, &w) : NULL;
	struct diag e = { 0 };
	if (g)
		gen_expiry_check(g, 30, &w, &e);
	for (size_t i = 0; i < d.n; i++)
		fprintf(stderr, "%s\n", d.msg[i]);
	/* expired CAs and stale CRLs: loud, but the configuration still loads */
	for (size_t i = 0; i < e.n; i++)
		fprintf(stderr, "error: %s\n", e.msg[i]);
	diag_free(&e);
	for (size_t i = 0; i < w.n; i++)
		fprintf(stderr, "warning: %s\n", w.msg[i]);
	int ok = g != NULL;
	if (ok)
		fprintf(stderr, "%s: configuration ok (%zu listen, %zu connect, %zu trust)\n", path, g->cfg->nlisten,
			g->cfg->nconnect, g->cfg->ntrust);
	gen_unref(g);
	diag_free(&d);
	diag_free(&w);
	return ok ? 0 : 1;
}

/* Drops root to the configured user and group, and checks that it stuck. */
static int drop_privileges(const struct config *cfg)
{
	if (geteuid() != 0)
		return 0;
	if (!cfg->user) {
		if (cfg->allow_root) {
			log_warn("running as root (allow-root = yes)");
			return 0;
		}
		log_err("%s: refusing to run as root: set 'user' (and 'group'), or 'allow-root = yes'", cfg->file);
		return -1;
	}
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw) {
		log_err("%s: unknown user '%s'", cfg->file, cfg->user);
		return -1;
	}
	gid_t gid = pw->pw_gid;
	if (cfg->group) {
		struct group *gr = getgrnam(cfg->group);
		if (!gr) {
			log_err("%s: unknown group '%s'", cfg->file, cfg->group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_err("cannot drop privileges to %s: %s", cfg->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0 || getegid() != gid) {
		log_err("privilege drop to %s did not stick", cfg->user);
		return -1;
	}
	log_info("running as user %s (uid %u, gid %u)", cfg->user, (unsigned)pw->pw_uid, (unsigned)gid);
	return 0;
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct sidecar *sc = w->data;
	(void)loop, (void)revents;
	if (!sc->stopping)
		sidecar_reload(sc);
}

/* In each worker: stop accepting; connections still in their handshake
 * carry no call yet and go now. */
static int stop_accepting(struct sidecar *w, void *arg)
{
	(void)arg;
	w->stopping = 1;
	listeners_close_all(w);
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (!c->hs_done)
			conn_close(c, "shutdown");
	}
	return 0;
}

/* In each worker: the shutdown-timeout is over. */
static int close_all(struct sidecar *w, void *arg)
{
	(void)arg;
	while (w->conns)
		conn_close(w->conns, "shutdown");
	return 0;
}

static void stop_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sidecar *sc = w->data;
	unsigned long open = __atomic_load_n(sc->total_conns, __ATOMIC_RELAXED);
	(void)revents;
	if (open == 0 || ev_now(loop) >= sc->stop_deadline) {
		if (open)
			log_warn("shutdown-timeout reached: closing %lu connections", open);
		for (unsigned i = 0; i < sc->nworkers; i++)
			worker_call(sc->workers[i], close_all, NULL);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void on_sigterm(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct sidecar *sc = w->data;
	(void)revents;
	if (sc->stopping)
		return;
	sc->stopping = 1;
	sdn_notify("STOPPING=1");
	log_info("stopping: %lu connections open, waiting up to %.1fs",
		 __atomic_load_n(sc->total_conns, __ATOMIC_RELAXED), sc->gen->cfg->shutdown_timeout);
	metrics_close(sc);
	for (unsigned i = 0; i < sc->nworkers; i++)
		worker_call(sc->workers[i], stop_accepting, NULL);
	sc->stop_deadline = ev_now(loop) + sc->gen->cfg->shutdown_timeout;
	ev_timer_init(&sc->stop_timer, stop_check, 0., 0.05);
	sc->stop_timer.data = sc;
	ev_timer_start(loop, &sc->stop_timer);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	sdn_notify("WATCHDOG=1");
}

/* STATUS= for systemctl status: open connections, verified peers, the
 * last (re)load; sent when it changes, checked every few seconds. */
static void on_status(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sidecar *sc = w->data;
	char text[sizeof sc->status_sent], ago[32];
	(void)loop, (void)revents;
	if (sc->stopping)
		return;
	unsigned long conns = __atomic_load_n(sc->total_conns, __ATOMIC_RELAXED);
	unsigned long peers = __atomic_load_n(sc->total_peers, __ATOMIC_RELAXED);
	long secs = (long)(time(NULL) - sc->loaded_at);
	if (secs < 120)
		snprintf(ago, sizeof ago, "%lds", secs < 0 ? 0 : secs);
	else if (secs < 7200)
		snprintf(ago, sizeof ago, "%ldm", secs / 60);
	else if (secs < 172800)
		snprintf(ago, sizeof ago, "%ldh", secs / 3600);
	else
		snprintf(ago, sizeof ago, "%ldd", secs / 86400);
	snprintf(text, sizeof text, "%lu connection%s, %lu verified peer%s; %s; configuration loaded %s ago", conns,
		 conns == 1 ? "" : "s", peers, peers == 1 ? "" : "s", sc->last_reload, ago);
	if (!strcmp(text, sc->status_sent))
		return;
	snprintf(sc->status_sent, sizeof sc->status_sent, "%s", text);
	sdn_notifyf("STATUS=%s", text);
}

static void on_daily(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	sidecar_expiry_report(w->data);
}

static int write_pid_file(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
		log_err("cannot write pid-file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Releases everything the runtime context holds; returns code. */
static int sidecar_exit(struct sidecar *sc, int code)
{
	workers_stop(sc); /* threads first: they hold references of their own */
	resolver_free(sc);
	metrics_close(sc);
	listeners_close_all(sc);
	while (sc->conns)
		conn_close(sc->conns, "shutdown");
	flow_stop(sc);
	status_close(sc);
	tallies_free(sc->tallies);
	ipcount_free(sc->ipcount);
	gen_unref(sc->gen);
	gnutls_free(sc->ticket_key.data);
	free(sc->scratch);
	free(sc->ra);
	for (int i = 0; i < sc->ninherited; i++)
		close(sc->inherited[i]);
	gnutls_global_deinit();
	return code;
}

int main(int argc, char **argv)
{
	const char *conf = DEFAULT_CONF;
	int test = 0, opt;
	if (argc > 1 && !strcmp(argv[1], "status"))
		return status_command(argc - 1, argv + 1, DEFAULT_CONF);
	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("sip-sidecar %s (GnuTLS %s, libev %d.%d, RSA signer %s)\n", PACKAGE_VERSION,
			       gnutls_check_version(NULL), ev_version_major(), ev_version_minor(), rsasign_name());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init();
	int r = gnutls_global_init();
	if (r < 0) {
		log_err("GnuTLS: %s", gnutls_strerror(r));
		return 1;
	}
	if (test)
		return check_config(conf);

	/* SIGHUP/SIGTERM/SIGINT wait (pending) until their watchers are up:
	 * the listeners accept before that, so a stop or a reload asked for
	 * as soon as a port answers must not meet the default action (death
	 * by the signal, exit status 143). */
	sigset_t startup_sigs;
	sigemptyset(&startup_sigs);
	sigaddset(&startup_sigs, SIGHUP);
	sigaddset(&startup_sigs, SIGTERM);
	sigaddset(&startup_sigs, SIGINT);
	if ((r = pthread_sigmask(SIG_BLOCK, &startup_sigs, NULL)) != 0) {
		log_err("cannot block signals during start-up: %s", strerror(r));
		return 1;
	}

	struct sidecar sc;
	memset(&sc, 0, sizeof sc);
	sc.conf_path = conf;
	sc.loop = ev_default_loop(EVFLAG_AUTO);
	if (!sc.loop) {
		log_err("cannot initialise libev");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r = gnutls_session_ticket_key_generate(&sc.ticket_key)) < 0) {
		log_err("cannot create the session ticket key: %s", gnutls_strerror(r));
		return sidecar_exit(&sc, 1);
	}
	if ((r = gnutls_rnd(GNUTLS_RND_KEY, sc.flow_key, sizeof sc.flow_key)) < 0) {
		log_err("cannot create the flow token key: %s", gnutls_strerror(r));
		return sidecar_exit(&sc, 1);
	}
	topo_key_init(&sc.flow_kctx, sc.flow_key);
	sc.ninherited = sdn_listen_fds(sc.inherited, (int)(sizeof sc.inherited / sizeof sc.inherited[0]));
	/* every descriptor the hard limit allows, before max-connections is
	 * judged against it (and clamped if it still does not fit) */
	(void)limits_raise_nofile();
	sc.ipcount = ipcount_new();
	if (!sc.ipcount) {
		log_err("cannot set up the per-address connection count");
		return sidecar_exit(&sc, 1);
	}
	if (sidecar_load_initial(&sc) < 0)
		return sidecar_exit(&sc, 1);
	const struct config *cfg = sc.gen->cfg;
	if (cfg->pid_file && write_pid_file(cfg->pid_file) < 0)
		return sidecar_exit(&sc, 1);
	if (drop_privileges(cfg) < 0)
		return sidecar_exit(&sc, 1);

	ev_signal_init(&sc.sighup, on_sighup, SIGHUP);
	ev_signal_init(&sc.sigterm, on_sigterm, SIGTERM);
	ev_signal_init(&sc.sigint, on_sigterm, SIGINT);
	sc.sighup.data = sc.sigterm.data = sc.sigint.data = &sc;
	ev_signal_start(sc.loop, &sc.sighup);
	ev_signal_start(sc.loop, &sc.sigterm);
	ev_signal_start(sc.loop, &sc.sigint);
	if ((r = pthread_sigmask(SIG_UNBLOCK, &startup_sigs, NULL)) != 0) {
		log_err("cannot unblock signals: %s", strerror(r));
		return sidecar_exit(&sc, 1);
	}
	uint64_t wd = sdn_watchdog_usec();
	if (wd) {
		ev_timer_init(&sc.watchdog, on_watchdog, 0., wd / 2e6);
		ev_timer_start(sc.loop, &sc.watchdog);
		ev_unref(sc.loop);
	}
	ev_timer_init(&sc.status_timer, on_status, 5., 5.);
	sc.status_timer.data = &sc;
	ev_timer_start(sc.loop, &sc.status_timer);
	ev_unref(sc.loop);
	ev_timer_init(&sc.daily, on_daily, 86400., 86400.);
	sc.daily.data = &sc;
	ev_timer_start(sc.loop, &sc.daily);
	ev_unref(sc.loop);

	log_info("sip-sidecar %s ready (GnuTLS %s, libev %d.%d, RSA signer %s), configuration %s", PACKAGE_VERSION,
		 gnutls_check_version(NULL), ev_version_major(), ev_version_minor(), rsasign_name(), conf);
	snprintf(sc.last_reload, sizeof sc.last_reload, "running, generation 1");
	sdn_notifyf("READY=1\nSTATUS=%s", sc.last_reload);
	ev_run(sc.loop, 0);

	log_info("stopped");
	if (sc.gen->cfg->pid_file)
		(void)unlink(sc.gen->cfg->pid_file);
	return sidecar_exit(&sc, 0);
}
