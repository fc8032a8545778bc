/*
 * status: the daemon's side (history, socket, rendering) and the command's
 * side (`sip-sidecar status`); see status.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <libgen.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctx.h"
#include "log.h"
#include "metrics.h"
#include "oneshot.h"
#include "status.h"
#include "tally.h"
#include "workers.h"

#define HIST_MIN 60             /* minutes of refusal history */
#define WARN_DAYS 30            /* certificates closer to expiry are shown in colour */

struct status {
	ev_timer minute;
	/* refused_by_reason totals at the start of each of the last minutes */
	uint64_t hist[HIST_MIN + 1][32];
	time_t hist_t[HIST_MIN + 1];
	unsigned hist_n, hist_next;
	struct oneshot *srv;
	char *path;                 /* the socket's path while open */
	dev_t dev;
	ino_t ino;
};

/* ---- growing text buffer ------------------------------------------------ */

struct out {
	char *b;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(o->b + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = (o->cap + (size_t)n) * 2;
		o->b = xrealloc(o->b, o->cap);
	}
}

/* A JSON string (quotes included). */
static void put_json(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			put(o, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			put(o, "\\u%04x", ch);
		else
			put(o, "%c", ch);
	}
	put(o, "\"");
}

/* Printable for a table: control characters shown as '?'. */
static const char *clean(char *dst, size_t size, const char *s)
{
	size_t i = 0;
	for (; *s && i + 1 < size; s++)
		dst[i++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	dst[i] = '\0';
	return dst;
}

/* ---- refusal history ------------------------------------------------------ */

static void snapshot(struct sidecar *sc)
{
	struct status *s = sc->status;
	struct stats sum;
	workers_stats(sc, &sum);
	memcpy(s->hist[s->hist_next], sum.refused_by_reason, sizeof s->hist[0]);
	s->hist_t[s->hist_next] = time(NULL);
	s->hist_next = (s->hist_next + 1) % (HIST_MIN + 1);
	if (s->hist_n < HIST_MIN + 1)
		s->hist_n++;
}

static void on_minute(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	snapshot(w->data);
}

void status_init(struct sidecar *sc)
{
	struct status *s = xcalloc(1, sizeof *s);
	sc->status = s;
	snapshot(sc); /* every counter is 0 now: the window starts at start */
	ev_timer_init(&s->minute, on_minute, 60., 60.);
	s->minute.data = sc;
	ev_timer_start(sc->loop, &s->minute);
	ev_unref(sc->loop);
}

/* Refusals since the oldest snapshot of the last hour; returns its time. */
static time_t refused_window(struct sidecar *sc, const struct stats *now, uint64_t *delta)
{
	struct status *s = sc->status;
	unsigned oldest = (s->hist_next + HIST_MIN + 1 - s->hist_n) % (HIST_MIN + 1);
	for (size_t k = 0; k < METRICS_NREASONS; k++)
		delta[k] = now->refused_by_reason[k] - s->hist[oldest][k];
	return s->hist_t[oldest];
}

/* ---- rendering ------------------------------------------------------------ */

static void ago(char *dst, size_t size, long secs)
{
	if (secs < 120)
		snprintf(dst, size, "%lds", secs < 0 ? 0 : secs);
	else if (secs < 7200)
		snprintf(dst, size, "%ldm", secs / 60);
	else if (secs < 172800)
		snprintf(dst, size, "%ldh", secs / 3600);
	else
		snprintf(dst, size, "%ldd", secs / 86400);
}

static const char *bind_of(const struct config *cfg, const struct tally *t)
{
	if (t->kind == TALLY_LISTEN) {
		for (size_t i = 0; i < cfg->nlisten; i++)
			if (!strcmp(cfg->listen[i].name, t->name))
				return cfg->listen[i].bind.text;
	} else {
		for (size_t i = 0; i < cfg->nconnect; i++)
			if (!strcmp(cfg->connect[i].name, t->name))
				return cfg->connect[i].bind.text;
	}
	return NULL; /* removed by a reload */
}

static uint64_t refused_sum(const struct tally *t)
{
	uint64_t n = 0;
	for (size_t k = 0; k < METRICS_NREASONS; k++)
		n += tally_get(&t->refused[k]);
	return n;
}

/* Distinct certificate files of the generation in force (as the metrics). */
static int cert_seen_before(const struct gen *g, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (!strcmp(g->certs[j].kind, g->certs[i].kind) && !strcmp(g->certs[j].file, g->certs[i].file) &&
		    !strcmp(g->certs[j].serial, g->certs[i].serial))
			return 1;
	return 0;
}

static void render_json(struct sidecar *sc, struct out *o)
{
	struct stats sum;
	uint64_t delta[32];
	workers_stats(sc, &sum);
	time_t since = refused_window(sc, &sum, delta), now = time(NULL);
	const struct config *cfg = sc->gen->cfg;
	put(o, "{\"version\":\"%s\",\"pid\":%ld,\"generation\":%lu,\"loaded_at\":%lld,\"last_load\":", PACKAGE_VERSION,
	    (long)getpid(), sc->gen->id, (long long)sc->loaded_at);
	put_json(o, sc->last_reload);
	put(o, ",\"connections\":%lu,\"verified_peer_connections\":%lu,\"now\":%lld,\"sections\":[",
	    __atomic_load_n(sc->total_conns, __ATOMIC_RELAXED), __atomic_load_n(sc->total_peers, __ATOMIC_RELAXED),
	    (long long)now);
	struct tally **v;
	size_t n = tally_sections(sc->tallies, &v);
	for (size_t i = 0; i < n; i++) {
		const char *bind = bind_of(cfg, v[i]);
		put(o, "%s{\"kind\":\"%s\",\"section\":", i ? "," : "", v[i]->kind == TALLY_LISTEN ? "listen" : "connect");
		put_json(o, v[i]->name);
		put(o, ",\"bind\":");
		if (bind)
			put_json(o, bind);
		else
			put(o, "null");
		put(o, ",\"open\":%llu,\"accepted\":%llu,\"refused\":%llu,\"messages_in\":%llu,\"messages_out\":%llu}",
		    (unsigned long long)tally_get(&v[i]->open), (unsigned long long)tally_get(&v[i]->accepted),
		    (unsigned long long)refused_sum(v[i]), (unsigned long long)tally_get(&v[i]->msgs_in),
		    (unsigned long long)tally_get(&v[i]->msgs_out));
	}
	put(o, "],\"peers\":[");
	n = tally_peers(sc->tallies, &v);
	int first = 1;
	for (size_t i = 0; i <= n; i++) {
		struct tally *t = i < n ? v[i] : sc->tallies->other;
		if (!tally_get(&t->open))
			continue;
		put(o, "%s{\"identity\":", first ? "" : ",");
		put_json(o, t->name);
		put(o, ",\"open\":%llu,\"since\":%lld,\"messages_in\":%llu,\"messages_out\":%llu}",
		    (unsigned long long)tally_get(&t->open), (long long)__atomic_load_n(&t->since, __ATOMIC_RELAXED),
		    (unsigned long long)tally_get(&t->msgs_in), (unsigned long long)tally_get(&t->msgs_out));
		first = 0;
	}
	put(o, "],\"refused_since\":%lld,\"refused\":{", (long long)since);
	first = 1;
	for (size_t k = 0; k < METRICS_NREASONS; k++)
		if (delta[k]) {
			put(o, "%s\"%s\":%llu", first ? "" : ",", metrics_reasons[k], (unsigned long long)delta[k]);
			first = 0;
		}
	put(o, "},\"certificates\":[");
	first = 1;
	for (size_t i = 0; i < sc->gen->ncerts; i++) {
		const struct certinfo *ci = &sc->gen->certs[i];
		if (ci->not_after <= 0 || cert_seen_before(sc->gen, i))
			continue;
		put(o, "%s{\"kind\":", first ? "" : ",");
		put_json(o, ci->kind);
		put(o, ",\"file\":");
		put_json(o, ci->file);
		put(o, ",\"subject\":");
		put_json(o, ci->subject);
		put(o, ",\"not_after\":%lld,\"days_left\":%lld}", (long long)ci->not_after,
		    (long long)((ci->not_after - now) / 86400));
		first = 0;
	}
	put(o, "]}\n");
}

static void render_text(struct sidecar *sc, struct out *o, int color)
{
	struct stats sum;
	uint64_t delta[32];
	char a[32], c1[200], c2[200];
	workers_stats(sc, &sum);
	time_t since = refused_window(sc, &sum, delta), now = time(NULL);
	const struct config *cfg = sc->gen->cfg;
	unsigned long conns = __atomic_load_n(sc->total_conns, __ATOMIC_RELAXED);
	ago(a, sizeof a, (long)(now - sc->loaded_at));
	put(o, "sip-sidecar %s, pid %ld: %lu connection%s; %s; configuration loaded %s ago\n", PACKAGE_VERSION,
	    (long)getpid(), conns, conns == 1 ? "" : "s", sc->last_reload, a);

	struct tally **v;
	size_t n = tally_sections(sc->tallies, &v);
	put(o, "\n%-8s %-20s %-24s %6s %9s %8s\n", "KIND", "SECTION", "BIND", "OPEN", "ACCEPTED", "REFUSED");
	for (size_t i = 0; i < n; i++) {
		const char *bind = bind_of(cfg, v[i]);
		put(o, "%-8s %-20s %-24s %6llu %9llu %8llu\n", v[i]->kind == TALLY_LISTEN ? "listen" : "connect",
		    clean(c1, sizeof c1, v[i]->name), bind ? bind : "(removed)", (unsigned long long)tally_get(&v[i]->open),
		    (unsigned long long)tally_get(&v[i]->accepted), (unsigned long long)refused_sum(v[i]));
	}

	n = tally_peers(sc->tallies, &v);
	int any = 0;
	for (size_t i = 0; i <= n; i++) {
		struct tally *t = i < n ? v[i] : sc->tallies->other;
		if (!tally_get(&t->open))
			continue;
		if (!any)
			put(o, "\n%-32s %6s %-20s %9s %9s\n", "PEER", "OPEN", "CONNECTED SINCE", "MSGS IN", "MSGS OUT");
		any = 1;
		time_t ts = (time_t)__atomic_load_n(&t->since, __ATOMIC_RELAXED);
		struct tm tm;
		char when[32] = "?";
		if (gmtime_r(&ts, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
		put(o, "%-32s %6llu %-20s %9llu %9llu\n", clean(c1, sizeof c1, t->name),
		    (unsigned long long)tally_get(&t->open), when, (unsigned long long)tally_get(&t->msgs_in),
		    (unsigned long long)tally_get(&t->msgs_out));
	}
	if (!any)
		put(o, "\nno verified peer connected\n");

	ago(a, sizeof a, (long)(now - since));
	any = 0;
	for (size_t k = 0; k < METRICS_NREASONS; k++)
		if (delta[k]) {
			if (!any)
				put(o, "\nREFUSED (last %s)\n", a);
			any = 1;
			put(o, "%-32s %8llu\n", metrics_reasons[k], (unsigned long long)delta[k]);
		}
	if (!any)
		put(o, "\nno refusals in the last %s\n", a);

	put(o, "\n%-12s %-44s %-11s %5s\n", "EXPIRY OF", "FILE", "NOT AFTER", "DAYS");
	for (size_t i = 0; i < sc->gen->ncerts; i++) {
		const struct certinfo *ci = &sc->gen->certs[i];
		if (ci->not_after <= 0 || cert_seen_before(sc->gen, i))
			continue;
		long long days = (long long)((ci->not_after - now) / 86400);
		struct tm tm;
		char when[16] = "?";
		if (gmtime_r(&ci->not_after, &tm))
			strftime(when, sizeof when, "%Y-%m-%d", &tm);
		int warn = color && days < WARN_DAYS;
		put(o, "%s%-12s %-44s %-11s %5lld%s\n", warn ? (days < 7 ? "\033[31m" : "\033[33m") : "",
		    clean(c1, sizeof c1, ci->kind), clean(c2, sizeof c2, ci->file), when, days, warn ? "\033[0m" : "");
	}
}

char *status_render(struct sidecar *sc, enum status_fmt fmt, size_t *len)
{
	struct out o = { xmalloc(4096), 0, 4096 };
	if (fmt == STATUS_JSON)
		render_json(sc, &o);
	else
		render_text(sc, &o, fmt == STATUS_COLOR);
	*len = o.len;
	return o.b;
}

/* ---- the socket ------------------------------------------------------------ */

/* The socket's answer to one line: "json", "ansi" or anything else (text). */
static char *answer(struct sidecar *sc, const char *req, size_t *len)
{
	enum status_fmt f = !strncmp(req, "json", 4) ? STATUS_JSON : !strncmp(req, "ansi", 4) ? STATUS_COLOR : STATUS_TEXT;
	return status_render(sc, f, len);
}

static void sock_close(struct status *s)
{
	struct stat st;
	if (!s->srv)
		return;
	oneshot_stop(s->srv);
	s->srv = NULL;
	/* remove it only if it is still ours */
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino && unlink(s->path) < 0)
		log_debug("status socket %s: unlink: %s", s->path, strerror(errno));
	free(s->path);
	s->path = NULL;
}

/* The path to serve: the file's, or the default when its directory exists. */
static const char *wanted_path(const struct config *cfg)
{
	if (!cfg->status_socket || cfg->status_socket_set)
		return cfg->status_socket;
	char dir[sizeof STATUS_SOCKET_DEFAULT];
	memcpy(dir, STATUS_SOCKET_DEFAULT, sizeof dir);
	return access(dirname(dir), W_OK) == 0 ? cfg->status_socket : NULL;
}

void status_apply(struct sidecar *sc)
{
	struct status *s = sc->status;
	const struct config *cfg = sc->gen->cfg;
	const char *path = wanted_path(cfg);
	if (!s)
		return;
	/* every section shows from the start, with its zeros */
	for (size_t i = 0; i < cfg->nlisten; i++)
		(void)tally_section(sc->tallies, TALLY_LISTEN, cfg->listen[i].name);
	for (size_t i = 0; i < cfg->nconnect; i++)
		(void)tally_section(sc->tallies, TALLY_CONNECT, cfg->connect[i].name);
	if (s->path && path && !strcmp(s->path, path))
		return;
	sock_close(s);
	if (!path)
		return;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_err("status socket %s: socket: %s", path, strerror(errno));
		return;
	}
	mode_t old = umask(0117); /* rw for owner and group */
	int r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	if (r < 0 && errno == EADDRINUSE) {
		/* another daemon's, or a stale one left by a crash */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			umask(old);
			log_warn("status socket %s is in use by another process: `sip-sidecar status` will not reach "
				 "this one (set status-socket)",
				 path);
			close(fd);
			return;
		}
		if (unlink(path) == 0)
			r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	}
	umask(old);
	struct stat st;
	if (r < 0 || listen(fd, 16) < 0 || stat(path, &st) < 0) {
		log_err("status socket %s: %s", path, strerror(errno));
		close(fd);
		return;
	}
	s->path = xstrdup(path);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->srv = oneshot_start(sc, fd, answer);
	log_info("status on %s", path);
}

void status_close(struct sidecar *sc)
{
	struct status *s = sc->status;
	if (!s)
		return;
	sock_close(s);
	ev_timer_stop(sc->loop, &s->minute);
	free(s);
	sc->status = NULL;
}

/* ---- the command ------------------------------------------------------------ */

/* Reads everything from fd until EOF (bounded by a deadline). */
static char *read_all(int fd, size_t *len)
{
	struct out o = { xmalloc(65536), 0, 65536 };
	for (;;) {
		if (o.cap - o.len < 4096) {
			o.cap *= 2;
			o.b = xrealloc(o.b, o.cap);
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, 10000);
		if (pr <= 0) {
			free(o.b);
			errno = pr == 0 ? ETIMEDOUT : errno;
			return NULL;
		}
		ssize_t r = recv(fd, o.b + o.len, o.cap - o.len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(o.b);
			return NULL;
		}
		if (r == 0)
			break;
		o.len += (size_t)r;
	}
	*len = o.len;
	return o.b;
}

static int send_all(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t r = send(fd, s, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

static char *ask_socket(const char *path, const char *what, size_t *len, char *why, size_t whysize)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char line[16];
	snprintf(line, sizeof line, "%s\n", what);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || send_all(fd, line) < 0) {
		snprintf(why, whysize, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char *r = read_all(fd, len);
	if (!r)
		snprintf(why, whysize, "%s: %s", path, strerror(errno));
	close(fd);
	return r;
}

static char *ask_http(const struct addr *a, const char *what, size_t *len, char *why, size_t whysize)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char req[128];
	snprintf(req, sizeof req, "GET /status.%s HTTP/1.0\r\n\r\n", what);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || send_all(fd, req) < 0) {
		snprintf(why, whysize, "http://%s: %s", a->text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	size_t n;
	char *r = read_all(fd, &n);
	close(fd);
	char *body = r ? strstr(r, "\r\n\r\n") : NULL;
	if (!body || strncmp(r, "HTTP/1.0 200", 12)) {
		snprintf(why, whysize, "http://%s: %s", a->text, r ? "unexpected answer" : strerror(errno));
		free(r);
		return NULL;
	}
	body += 4;
	*len = n - (size_t)(body - r);
	memmove(r, body, *len);
	return r;
}

int status_command(int argc, char **argv, const char *default_conf)
{
	const char *conf = default_conf;
	int json = 0, opt;
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			printf("usage: sip-sidecar status [-c FILE] [--json]\n");
			return 0;
		default:
			fprintf(stderr, "usage: sip-sidecar status [-c FILE] [--json]\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: sip-sidecar status [-c FILE] [--json]\n");
		return 2;
	}
	struct diag d = { 0 };
	struct config *cfg = config_load(conf, &d);
	const char *path = STATUS_SOCKET_DEFAULT;
	if (!cfg)
		fprintf(stderr, "sip-sidecar status: %s; trying %s\n", d.n ? d.msg[0] : conf, path);
	else
		path = cfg->status_socket;
	diag_free(&d);
	const char *what = json ? "json" : isatty(STDOUT_FILENO) ? "ansi" : "text";
	char why[512] = "", why2[512] = "";
	size_t len = 0;
	char *r = path ? ask_socket(path, what, &len, why, sizeof why) : NULL;
	if (!path)
		snprintf(why, sizeof why, "status-socket is off");
	if (!r && cfg && cfg->metrics)
		r = ask_http(&cfg->metrics_addr, what, &len, why2, sizeof why2);
	config_free(cfg);
	if (!r) {
		fprintf(stderr, "sip-sidecar status: cannot reach the daemon: %s%s%s\n", why, why2[0] ? "; " : "", why2);
		return 1;
	}
	int rc = fwrite(r, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
	free(r);
	return rc;
}
