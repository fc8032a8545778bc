/*
 * config: INI parser for sip-sidecar.conf. A table maps (section, key) to a
 * handler and a field offset, so a new key is one row. After parsing, a
 * semantic pass checks required keys and cross references.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "config.h"
#include "log.h"

enum section_kind { SEC_NONE, SEC_GLOBAL, SEC_LISTEN, SEC_CONNECT, SEC_TRUST };

struct parse {
	struct config *cfg;
	struct diag *d;
	const char *file;
	unsigned line;
	enum section_kind sec;
	void *obj; /* the struct of the current section */
	/* keys seen in the current section, to refuse non-list duplicates */
	const void *seen[64];
	size_t nseen;
	int bad_section; /* the last section header was refused */
};

static char *trim(char *s);

typedef int (*key_fn)(struct parse *p, void *field, const char *val);

struct key {
	enum section_kind sec;
	const char *name;
	key_fn fn;
	size_t off;
	int list; /* may repeat */
};

static int set_str(struct parse *p, void *field, const char *val)
{
	char **s = field;
	free(*s);
	*s = xstrdup(val);
	(void)p;
	return 0;
}

static int set_list(struct parse *p, void *field, const char *val)
{
	struct clist *l = field;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n].s = xstrdup(val);
	l->v[l->n].line = p->line;
	l->n++;
	return 0;
}

static int set_duration(struct parse *p, void *field, const char *val)
{
	if (parse_duration(val, field) < 0) {
		diag_add(p->d, p->file, p->line, "invalid duration '%s' (use e.g. 500ms, 10s, 5m, 1h)", val);
		return -1;
	}
	return 0;
}

static int set_size(struct parse *p, void *field, const char *val)
{
	size_t v;
	if (parse_size(val, &v) < 0 || v < 256) {
		diag_add(p->d, p->file, p->line, "invalid size '%s' (use e.g. 64k; at least 256)", val);
		return -1;
	}
	*(size_t *)field = v;
	return 0;
}

static int set_count(struct parse *p, void *field, const char *val)
{
	if (parse_uint(val, 10000000, field) < 0) {
		diag_add(p->d, p->file, p->line, "invalid number '%s'", val);
		return -1;
	}
	return 0;
}

static int set_metrics_peers(struct parse *p, void *field, const char *val)
{
	if (parse_uint(val, 10000, field) < 0) {
		diag_add(p->d, p->file, p->line, "invalid metrics-peers '%s' (a number from 0 to 10000)", val);
		return -1;
	}
	return 0;
}

static int set_status_socket(struct parse *p, void *field, const char *val)
{
	char **dst = field;
	free(*dst);
	*dst = strcmp(val, "off") ? xstrdup(val) : NULL;
	p->cfg->status_socket_set = 1;
	if (*dst && (**dst != '/' || strlen(*dst) >= 108)) {
		diag_add(p->d, p->file, p->line, "status-socket must be an absolute path under 108 bytes, or off");
		return -1;
	}
	return 0;
}

/* max-connections-per-ip: a count, or "unlimited" (0). */
static int set_per_ip(struct parse *p, void *field, const char *val)
{
	((struct listen_conf *)p->obj)->max_conns_per_ip_set = 1;
	if (!strcmp(val, "unlimited")) {
		*(unsigned long *)field = 0;
		return 0;
	}
	if (parse_uint(val, 10000000, field) < 0 || *(unsigned long *)field == 0) {
		diag_add(p->d, p->file, p->line, "invalid max-connections-per-ip '%s' (a number from 1, or unlimited)", val);
		return -1;
	}
	return 0;
}

static int set_bool(struct parse *p, void *field, const char *val)
{
	if (parse_bool(val, field) < 0) {
		diag_add(p->d, p->file, p->line, "invalid boolean '%s' (use on or off)", val);
		return -1;
	}
	return 0;
}

static int set_loglevel(struct parse *p, void *field, const char *val)
{
	int lvl = log_level_parse(val);
	if (lvl < 0) {
		diag_add(p->d, p->file, p->line, "invalid log-level '%s' (error, warn, info or debug)", val);
		return -1;
	}
	*(int *)field = lvl;
	return 0;
}

static int set_addr(struct parse *p, void *field, const char *val)
{
	struct addr *a = field;
	if (addr_parse(val, a) < 0) {
		diag_add(p->d, p->file, p->line,
			 "invalid address '%s' (use IPv4:PORT or [IPv6]:PORT)", val);
		return -1;
	}
	/* the line of an address lives right after it in listen/connect structs */
	return 0;
}

static int set_listen_bind(struct parse *p, void *field, const char *val)
{
	struct listen_conf *l = p->obj;
	l->bind_line = p->line; /* even when bad: "needs 'bind'" would be noise */
	return set_addr(p, field, val);
}

static int set_listen_backend(struct parse *p, void *field, const char *val)
{
	struct listen_conf *l = p->obj;
	l->backend_line = p->line;
	return set_addr(p, field, val);
}

static int set_connect_bind(struct parse *p, void *field, const char *val)
{
	struct connect_conf *c = p->obj;
	c->bind_line = p->line; /* even when bad: "needs 'bind'" would be noise */
	return set_addr(p, field, val);
}

static int set_server(struct parse *p, void *field, const char *val)
{
	struct connect_conf *c = p->obj;
	(void)field;
	free(c->server_host);
	free(c->server_port);
	c->server_host = c->server_port = NULL;
	if (hostport_split(val, &c->server_host, &c->server_port) < 0 || !*c->server_host) {
		diag_add(p->d, p->file, p->line, "invalid server '%s' (use HOST:PORT)", val);
		return -1;
	}
	c->server_line = p->line;
	return 0;
}

/* "HOST[:PORT]": a DNS name or an IP literal ([v6] with a port). */
static int set_hostport(struct parse *p, char **host, unsigned *port, const char *val, int need_ip)
{
	char *h = NULL, *pt = NULL;
	unsigned long v = 0;
	const char *colon = strrchr(val, ':');
	int bracket = val[0] == '[';
	if (colon && (bracket ? colon > strchr(val, ']') : strchr(val, ':') == colon)) {
		if (hostport_split(val, &h, &pt) < 0 || parse_uint(pt, 65535, &v) < 0)
			goto bad;
	} else {
		h = xstrdup(val);
		if (bracket) {
			size_t n = strlen(h);
			if (n < 3 || h[n - 1] != ']')
				goto bad;
			memmove(h, h + 1, n - 2);
			h[n - 2] = '\0';
		}
	}
	if (!*h || strlen(h) > 200)
		goto bad;
	for (const char *c = h; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr(".-_:", *c))
			goto bad;
	if (need_ip) {
		char buf[300];
		struct addr a;
		snprintf(buf, sizeof buf, strchr(h, ':') ? "[%s]:1" : "%s:1", h);
		if (addr_parse(buf, &a) < 0)
			goto bad;
	}
	free(*host);
	*host = h;
	*port = (unsigned)v;
	free(pt);
	return 0;
bad:
	diag_add(p->d, p->file, p->line, "invalid %s '%s' (use %s[:PORT])", need_ip ? "address" : "host", val,
		 need_ip ? "IP" : "HOST");
	free(h);
	free(pt);
	return -1;
}

static int set_advertise(struct parse *p, void *field, const char *val)
{
	struct listen_conf *l = p->obj;
	(void)field;
	return set_hostport(p, &l->advertise_host, &l->advertise_port, val, 0);
}

static int set_flow_bind(struct parse *p, void *field, const char *val)
{
	(void)field;
	return set_hostport(p, &p->cfg->flow_host, &p->cfg->flow_port, val, 1);
}

static int set_priority(struct parse *p, void *field, const char *val)
{
	if (p->sec == SEC_LISTEN)
		((struct listen_conf *)p->obj)->tls_priority_line = p->line;
	else
		((struct connect_conf *)p->obj)->tls_priority_line = p->line;
	return set_str(p, field, val);
}

static int set_client_auth(struct parse *p, void *field, const char *val)
{
	enum client_auth *ca = field;
	if (!strcmp(val, "none"))
		*ca = CLIENT_AUTH_NONE;
	else if (!strcmp(val, "optional"))
		*ca = CLIENT_AUTH_OPTIONAL;
	else if (!strcmp(val, "require"))
		*ca = CLIENT_AUTH_REQUIRE;
	else {
		diag_add(p->d, p->file, p->line, "invalid client-auth '%s' (none, optional or require)", val);
		return -1;
	}
	return 0;
}

static int set_proxy(struct parse *p, void *field, const char *val)
{
	enum proxy_proto *pp = field;
	if (!strcmp(val, "off"))
		*pp = PROXY_OFF;
	else if (!strcmp(val, "v2"))
		*pp = PROXY_V2;
	else {
		diag_add(p->d, p->file, p->line, "invalid proxy-protocol '%s' (off or v2)", val);
		return -1;
	}
	return 0;
}

/* A SIP header name: RFC 3261 token characters. */
static int set_header_name(struct parse *p, void *field, const char *val)
{
	const char *tok = "-.!%*_+`'~";
	if (!*val || strlen(val) > 64)
		goto bad;
	for (const char *c = val; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr(tok, *c))
			goto bad;
	return set_str(p, field, val);
bad:
	diag_add(p->d, p->file, p->line, "invalid header name '%s'", val);
	return -1;
}

static int set_metrics(struct parse *p, void *field, const char *val)
{
	if (set_addr(p, &p->cfg->metrics_addr, val) < 0)
		return -1;
	return set_str(p, field, val);
}

/* crl-stale = refuse | warn */
static int set_crl_stale(struct parse *p, void *field, const char *val)
{
	if (!strcmp(val, "refuse"))
		*(int *)field = 0;
	else if (!strcmp(val, "warn"))
		*(int *)field = 1;
	else {
		diag_add(p->d, p->file, p->line, "invalid crl-stale '%s' (refuse or warn)", val);
		return -1;
	}
	return 0;
}

/* verify-depth = 1..15 (a peer chain holds at most 16 certificates) */
static int set_depth(struct parse *p, void *field, const char *val)
{
	unsigned long v;
	if (parse_uint(val, 15, &v) < 0 || v < 1) {
		diag_add(p->d, p->file, p->line, "invalid verify-depth '%s' (1 to 15)", val);
		return -1;
	}
	*(unsigned *)field = (unsigned)v;
	return 0;
}

/* ocsp-response = FILE: for the 'cert' line above it in the section. */
static int set_ocsp(struct parse *p, void *field, const char *val)
{
	struct listen_conf *l = p->obj;
	(void)field;
	if (l->cert.n == 0) {
		diag_add(p->d, p->file, p->line, "ocsp-response must follow the 'cert' it is for");
		return -1;
	}
	for (size_t i = 0; i < l->ocsp.n; i++)
		if (l->ocsp_cert[i] == l->cert.n - 1) {
			diag_add(p->d, p->file, p->line, "certificate %s already has an ocsp-response (line %u)",
				 l->cert.v[l->cert.n - 1].s, l->ocsp.v[i].line);
			return -1;
		}
	l->ocsp_cert = xrealloc(l->ocsp_cert, (l->ocsp.n + 1) * sizeof *l->ocsp_cert);
	l->ocsp_cert[l->ocsp.n] = l->cert.n - 1;
	return set_list(p, &l->ocsp, val);
}

static int set_ticket_key_file(struct parse *p, void *field, const char *val)
{
	p->cfg->ticket_key_line = p->line;
	return set_str(p, field, val);
}

#define STR_(x) #x
#define XSTR(x) STR_(x)

/* One IPv4 address of 127.0.0.0/8, in host order. */
static int loopback4(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return (*out >> 24) == 127 ? 0 : -1;
}

/*
 * backend-source: "A-B" (a range) or "A, B, ..." (a list, items may be
 * ranges), IPv4 loopback addresses only: IPv6 has one loopback address.
 */
static int set_backend_source(struct parse *p, void *field, const char *val)
{
	struct listen_conf *l = p->obj;
	char *copy = xstrdup(val), *save = NULL;
	const char *why = NULL;
	(void)field;
	free(l->bsrc);
	l->bsrc = NULL;
	l->nbsrc = 0;
	l->bsrc_line = p->line;
	for (char *item = strtok_r(copy, ",", &save); item && !why; item = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(item, '-');
		if (dash)
			*dash = '\0';
		char *a = trim(item), *b = dash ? trim(dash + 1) : a;
		uint32_t lo, hi;
		if (loopback4(a, &lo) < 0 || loopback4(b, &hi) < 0)
			why = "not an IPv4 loopback address (127.x.y.z)";
		else if (hi < lo)
			why = "a range must go upwards";
		else if (hi - lo >= BSRC_MAX || l->nbsrc + (hi - lo) + 1 > BSRC_MAX)
			why = "more than " XSTR(BSRC_MAX) " addresses";
		for (uint64_t v = lo; !why && v <= hi; v++) {
			for (size_t i = 0; i < l->nbsrc && !why; i++)
				if (l->bsrc[i] == (uint32_t)v)
					why = "an address given twice";
			l->bsrc = xrealloc(l->bsrc, (l->nbsrc + 1) * sizeof *l->bsrc);
			l->bsrc[l->nbsrc++] = (uint32_t)v;
		}
	}
	free(copy);
	if (!why && l->nbsrc == 0)
		why = "no address";
	if (why) {
		diag_add(p->d, p->file, p->line,
			 "invalid backend-source '%s': %s (use e.g. 127.0.0.2-127.0.0.9, or a list 127.0.0.2, 127.0.0.3)",
			 val, why);
		return -1;
	}
	return 0;
}

#define G(f) offsetof(struct config, f)
#define L(f) offsetof(struct listen_conf, f)
#define C(f) offsetof(struct connect_conf, f)
#define T(f) offsetof(struct trust_conf, f)

static const struct key keys[] = {
	{ SEC_GLOBAL, "user", set_str, G(user), 0 },
	{ SEC_GLOBAL, "group", set_str, G(group), 0 },
	{ SEC_GLOBAL, "allow-root", set_bool, G(allow_root), 0 },
	{ SEC_GLOBAL, "pid-file", set_str, G(pid_file), 0 },
	{ SEC_GLOBAL, "log-level", set_loglevel, G(log_level), 0 },
	{ SEC_GLOBAL, "max-connections", set_count, G(max_connections), 0 },
	{ SEC_GLOBAL, "handshake-timeout", set_duration, G(handshake_timeout), 0 },
	{ SEC_GLOBAL, "idle-timeout", set_duration, G(idle_timeout), 0 },
	{ SEC_GLOBAL, "message-timeout", set_duration, G(message_timeout), 0 },
	{ SEC_GLOBAL, "shutdown-timeout", set_duration, G(shutdown_timeout), 0 },
	{ SEC_GLOBAL, "max-message-size", set_size, G(max_message_size), 0 },
	{ SEC_GLOBAL, "metrics", set_metrics, G(metrics), 0 },
	{ SEC_GLOBAL, "metrics-peers", set_metrics_peers, G(metrics_peers), 0 },
	{ SEC_GLOBAL, "status-socket", set_status_socket, G(status_socket), 0 },
	{ SEC_GLOBAL, "workers", set_count, G(workers), 0 },
	{ SEC_GLOBAL, "flow-bind", set_flow_bind, 0, 0 },
	{ SEC_GLOBAL, "registration-margin", set_duration, G(registration_margin), 0 },
	{ SEC_GLOBAL, "ticket-key-file", set_ticket_key_file, G(ticket_key_file), 0 },

	{ SEC_LISTEN, "bind", set_listen_bind, L(bind), 0 },
	{ SEC_LISTEN, "backend", set_listen_backend, L(backend), 0 },
	{ SEC_LISTEN, "cert", set_list, L(cert), 1 },
	{ SEC_LISTEN, "key", set_list, L(key), 1 },
	{ SEC_LISTEN, "client-auth", set_client_auth, L(client_auth), 0 },
	{ SEC_LISTEN, "ca", set_list, L(ca), 1 },
	{ SEC_LISTEN, "crl", set_list, L(crl), 1 },
	{ SEC_LISTEN, "allow-peer", set_list, L(allow_peer), 1 },
	{ SEC_LISTEN, "trust", set_list, L(trust), 1 },
	{ SEC_LISTEN, "identity-header", set_header_name, L(identity_header), 0 },
	{ SEC_LISTEN, "proxy-protocol", set_proxy, L(proxy_protocol), 0 },
	{ SEC_LISTEN, "tls-priority", set_priority, L(tls_priority), 0 },
	{ SEC_LISTEN, "sip-framing", set_bool, L(sip_framing), 0 },
	{ SEC_LISTEN, "advertise", set_advertise, 0, 0 },
	{ SEC_LISTEN, "topology", set_bool, L(topology), 0 },
	{ SEC_LISTEN, "crl-stale", set_crl_stale, L(crl_stale_warn), 0 },
	{ SEC_LISTEN, "verify-depth", set_depth, L(verify_depth), 0 },
	{ SEC_LISTEN, "ocsp-response", set_ocsp, 0, 1 },
	{ SEC_LISTEN, "max-connections-per-ip", set_per_ip, L(max_conns_per_ip), 0 },
	{ SEC_LISTEN, "backend-source", set_backend_source, 0, 0 },

	{ SEC_CONNECT, "bind", set_connect_bind, C(bind), 0 },
	{ SEC_CONNECT, "server", set_server, 0, 0 },
	{ SEC_CONNECT, "server-name", set_str, C(server_name), 0 },
	{ SEC_CONNECT, "cert", set_list, C(cert), 0 },
	{ SEC_CONNECT, "key", set_list, C(key), 0 },
	{ SEC_CONNECT, "ca", set_list, C(ca), 1 },
	{ SEC_CONNECT, "crl", set_list, C(crl), 1 },
	{ SEC_CONNECT, "identity-header", set_header_name, C(identity_header), 0 },
	{ SEC_CONNECT, "tls-priority", set_priority, C(tls_priority), 0 },
	{ SEC_CONNECT, "connect-timeout", set_duration, C(connect_timeout), 0 },
	{ SEC_CONNECT, "sip-framing", set_bool, C(sip_framing), 0 },
	{ SEC_CONNECT, "topology", set_bool, C(topology), 0 },
	{ SEC_CONNECT, "crl-stale", set_crl_stale, C(crl_stale_warn), 0 },
	{ SEC_CONNECT, "verify-depth", set_depth, C(verify_depth), 0 },

	{ SEC_TRUST, "ca", set_list, T(ca), 1 },
	{ SEC_TRUST, "crl", set_list, T(crl), 1 },
	{ SEC_TRUST, "peer", set_list, T(peer), 1 },
};

static void config_defaults(struct config *cfg)
{
	cfg->log_level = LOG_LVL_INFO;
	cfg->max_connections = 20000;
	cfg->metrics_peers = 100;
	cfg->status_socket = xstrdup(STATUS_SOCKET_DEFAULT);
	cfg->handshake_timeout = 10;
	cfg->idle_timeout = 3900; /* longer than the common 3600 s registration */
	cfg->message_timeout = 30;
	cfg->registration_margin = 60;
	cfg->flow_host = xstrdup("127.0.0.1");
	cfg->shutdown_timeout = 5;
	cfg->max_message_size = 64 * 1024;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Strips a trailing " # comment" (a '#' preceded by white space). */
static void strip_comment(char *s)
{
	for (char *c = s; *c; c++)
		if (*c == '#' && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			return;
		}
}

static int name_taken(struct parse *p, enum section_kind k, const char *name)
{
	size_t i;
	if (k == SEC_LISTEN) {
		for (i = 0; i < p->cfg->nlisten; i++)
			if (!strcmp(p->cfg->listen[i].name, name))
				return 1;
	} else if (k == SEC_CONNECT) {
		for (i = 0; i < p->cfg->nconnect; i++)
			if (!strcmp(p->cfg->connect[i].name, name))
				return 1;
	} else if (k == SEC_TRUST) {
		for (i = 0; i < p->cfg->ntrust; i++)
			if (!strcmp(p->cfg->trust[i].name, name))
				return 1;
	}
	return 0;
}

/* Handles "[kind NAME]". Returns 0, or -1 after a diag. */
static int open_section(struct parse *p, char *hdr)
{
	struct config *cfg = p->cfg;
	char *kind = trim(hdr), *name = kind;
	while (*name && !isspace((unsigned char)*name))
		name++;
	if (*name)
		*name++ = '\0';
	name = trim(name);
	p->nseen = 0;
	if (!strcmp(kind, "global")) {
		if (*name)
			goto bad_name;
		p->sec = SEC_GLOBAL;
		p->obj = cfg;
		return 0;
	}
	enum section_kind k = !strcmp(kind, "listen") ? SEC_LISTEN : !strcmp(kind, "connect") ? SEC_CONNECT
							: !strcmp(kind, "trust") ? SEC_TRUST : SEC_NONE;
	if (k == SEC_NONE) {
		diag_add(p->d, p->file, p->line, "unknown section [%s]", kind);
		p->sec = SEC_NONE;
		return -1;
	}
	if (!*name || strpbrk(name, " \t[]"))
		goto bad_name;
	if (name_taken(p, k, name)) {
		diag_add(p->d, p->file, p->line, "duplicate section [%s %s]", kind, name);
		p->sec = SEC_NONE;
		return -1;
	}
	p->sec = k;
	if (k == SEC_LISTEN) {
		cfg->listen = xrealloc(cfg->listen, (cfg->nlisten + 1) * sizeof *cfg->listen);
		struct listen_conf *l = &cfg->listen[cfg->nlisten++];
		memset(l, 0, sizeof *l);
		l->name = xstrdup(name);
		l->line = p->line;
		l->sip_framing = 1;
		l->topology = 1;
		p->obj = l;
	} else if (k == SEC_CONNECT) {
		cfg->connect = xrealloc(cfg->connect, (cfg->nconnect + 1) * sizeof *cfg->connect);
		struct connect_conf *c = &cfg->connect[cfg->nconnect++];
		memset(c, 0, sizeof *c);
		c->name = xstrdup(name);
		c->line = p->line;
		c->connect_timeout = 5;
		c->sip_framing = 1;
		c->topology = 1;
		p->obj = c;
	} else {
		cfg->trust = xrealloc(cfg->trust, (cfg->ntrust + 1) * sizeof *cfg->trust);
		struct trust_conf *t = &cfg->trust[cfg->ntrust++];
		memset(t, 0, sizeof *t);
		t->name = xstrdup(name);
		t->line = p->line;
		p->obj = t;
	}
	return 0;
bad_name:
	diag_add(p->d, p->file, p->line, "section [%s] needs %s", kind,
		 !strcmp(kind, "global") ? "no name" : "one name without spaces, e.g. [listen public]");
	p->sec = SEC_NONE;
	return -1;
}

/* Handles "key = value" in the current section. */
static int set_key(struct parse *p, const char *key, const char *val)
{
	if (p->sec == SEC_NONE) {
		diag_add(p->d, p->file, p->line, "'%s' outside of a section", key);
		return -1;
	}
	/* The object pointer may move when sections are appended: refresh. */
	if (p->sec == SEC_LISTEN)
		p->obj = &p->cfg->listen[p->cfg->nlisten - 1];
	else if (p->sec == SEC_CONNECT)
		p->obj = &p->cfg->connect[p->cfg->nconnect - 1];
	else if (p->sec == SEC_TRUST)
		p->obj = &p->cfg->trust[p->cfg->ntrust - 1];
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key *k = &keys[i];
		if (k->sec != p->sec || strcmp(k->name, key))
			continue;
		if (!k->list) {
			for (size_t j = 0; j < p->nseen; j++)
				if (p->seen[j] == k) {
					diag_add(p->d, p->file, p->line, "duplicate key '%s'", key);
					return -1;
				}
			if (p->nseen < sizeof p->seen / sizeof p->seen[0])
				p->seen[p->nseen++] = k;
		}
		if (!*val) {
			diag_add(p->d, p->file, p->line, "empty value for '%s'", key);
			return -1;
		}
		return k->fn(p, (char *)p->obj + k->off, val);
	}
	diag_add(p->d, p->file, p->line, "unknown key '%s'", key);
	return -1;
}

static int is_ip_literal(const char *host)
{
	struct addr a;
	char buf[300];
	snprintf(buf, sizeof buf, strchr(host, ':') ? "[%s]:1" : "%s:1", host);
	return addr_parse(buf, &a) == 0;
}

/* Required keys and cross references, after the whole file is read. */
static void config_check(struct parse *p)
{
	struct config *cfg = p->cfg;
	const char *f = p->file;
	if (cfg->nlisten == 0 && cfg->nconnect == 0)
		diag_add(p->d, f, 0, "no [listen] or [connect] section: nothing to do");
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct listen_conf *l = &cfg->listen[i];
		if (!l->bind_line)
			diag_add(p->d, f, l->line, "[listen %s] needs 'bind'", l->name);
		if (!l->backend_line)
			diag_add(p->d, f, l->line, "[listen %s] needs 'backend'", l->name);
		if (l->cert.n == 0)
			diag_add(p->d, f, l->line, "[listen %s] needs 'cert' and 'key'", l->name);
		else if (l->cert.n != l->key.n)
			diag_add(p->d, f, l->line, "[listen %s] has %zu 'cert' but %zu 'key': one key per cert",
				 l->name, l->cert.n, l->key.n);
		if (l->client_auth != CLIENT_AUTH_NONE && l->ca.n == 0 && l->trust.n == 0)
			diag_add(p->d, f, l->line, "[listen %s] client-auth needs 'ca' or 'trust'", l->name);
		if (l->client_auth == CLIENT_AUTH_NONE && (l->ca.n || l->allow_peer.n || l->trust.n || l->crl.n))
			diag_add(p->d, f, l->line,
				 "[listen %s] has ca/crl/allow-peer/trust but client-auth = none", l->name);
		if (l->allow_peer.n && l->ca.n == 0)
			diag_add(p->d, f, l->allow_peer.v[0].line, "allow-peer needs 'ca' in the same section");
		for (size_t j = 0; j < l->trust.n; j++) {
			size_t k;
			for (k = 0; k < cfg->ntrust; k++)
				if (!strcmp(cfg->trust[k].name, l->trust.v[j].s))
					break;
			if (k == cfg->ntrust)
				diag_add(p->d, f, l->trust.v[j].line, "no [trust %s] section", l->trust.v[j].s);
		}
		if (!l->max_conns_per_ip_set)
			l->max_conns_per_ip = l->client_auth == CLIENT_AUTH_REQUIRE ? 0 : DEFAULT_MAX_CONNS_PER_IP;
		for (size_t j = 0; j < i; j++)
			if (l->bind.text[0] && !strcmp(cfg->listen[j].bind.text, l->bind.text))
				diag_add(p->d, f, l->bind_line, "address %s is already bound by [listen %s]",
					 l->bind.text, cfg->listen[j].name);
		if (l->nbsrc && l->backend_line &&
		    (l->backend.ss.ss_family != AF_INET ||
		     (ntohl(((struct sockaddr_in *)&l->backend.ss)->sin_addr.s_addr) >> 24) != 127))
			diag_add(p->d, f, l->bsrc_line,
				 "backend-source needs an IPv4 loopback backend (127.x.y.z:PORT), not %s",
				 l->backend.text);
	}
	for (size_t i = 0; i < cfg->nconnect; i++) {
		struct connect_conf *c = &cfg->connect[i];
		if (!c->bind_line)
			diag_add(p->d, f, c->line, "[connect %s] needs 'bind'", c->name);
		if (!c->server_line)
			diag_add(p->d, f, c->line, "[connect %s] needs 'server'", c->name);
		if (c->cert.n != c->key.n)
			diag_add(p->d, f, c->line, "[connect %s] needs both 'cert' and 'key', or neither", c->name);
		if (c->ca.n == 0)
			diag_add(p->d, f, c->line, "[connect %s] needs 'ca' to verify the server", c->name);
		if (!c->server_name && c->server_host) {
			if (is_ip_literal(c->server_host))
				diag_add(p->d, f, c->server_line,
					 "[connect %s] server is an address: set 'server-name' to the identity it must prove",
					 c->name);
			else
				c->server_name = xstrdup(c->server_host);
		}
		for (size_t j = 0; j < cfg->nlisten; j++)
			if (c->bind.text[0] && !strcmp(cfg->listen[j].bind.text, c->bind.text))
				diag_add(p->d, f, c->bind_line, "address %s is already bound by [listen %s]",
					 c->bind.text, cfg->listen[j].name);
		for (size_t j = 0; j < i; j++)
			if (c->bind.text[0] && !strcmp(cfg->connect[j].bind.text, c->bind.text))
				diag_add(p->d, f, c->bind_line, "address %s is already bound by [connect %s]",
					 c->bind.text, cfg->connect[j].name);
	}
	for (size_t i = 0; i < cfg->ntrust; i++) {
		struct trust_conf *t = &cfg->trust[i];
		if (t->ca.n == 0)
			diag_add(p->d, f, t->line, "[trust %s] needs 'ca'", t->name);
		if (t->peer.n == 0)
			diag_add(p->d, f, t->line, "[trust %s] needs at least one 'peer'", t->name);
	}
	if (cfg->group && !cfg->user)
		diag_add(p->d, f, 0, "'group' needs 'user'");
}

struct config *config_load(const char *file, struct diag *d)
{
	FILE *fp = fopen(file, "r");
	if (!fp) {
		diag_add(d, file, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	struct config *cfg = xcalloc(1, sizeof *cfg);
	config_defaults(cfg);
	cfg->file = xstrdup(file);
	struct parse p = { .cfg = cfg, .d = d, .file = cfg->file, .sec = SEC_NONE };
	size_t before = d->n;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&buf, &cap, fp)) >= 0) {
		p.line++;
		if (memchr(buf, '\0', (size_t)len)) {
			diag_add(d, p.file, p.line, "NUL byte in line");
			continue;
		}
		char *s = trim(buf);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			strip_comment(s);
			s = trim(s);
			size_t n = strlen(s);
			if (s[n - 1] != ']') {
				diag_add(d, p.file, p.line, "section header without ']'");
				p.sec = SEC_NONE;
				p.bad_section = 1;
				continue;
			}
			s[n - 1] = '\0';
			p.bad_section = open_section(&p, s + 1) < 0;
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			diag_add(d, p.file, p.line, "expected 'key = value'");
			continue;
		}
		*eq = '\0';
		char *key = trim(s), *val = eq + 1;
		strip_comment(val);
		val = trim(val);
		if (p.sec == SEC_NONE && p.bad_section)
			continue; /* inside a section already reported as bad */
		set_key(&p, key, val);
	}
	free(buf);
	if (ferror(fp))
		diag_add(d, p.file, p.line, "read error: %s", strerror(errno));
	fclose(fp);
	config_check(&p);
	if (d->n > before) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

static void clist_free(struct clist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].s);
	free(l->v);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct listen_conf *l = &cfg->listen[i];
		free(l->name);
		clist_free(&l->cert);
		clist_free(&l->key);
		clist_free(&l->ca);
		clist_free(&l->crl);
		clist_free(&l->allow_peer);
		clist_free(&l->trust);
		clist_free(&l->ocsp);
		free(l->ocsp_cert);
		free(l->identity_header);
		free(l->tls_priority);
		free(l->advertise_host);
		free(l->bsrc);
	}
	for (size_t i = 0; i < cfg->nconnect; i++) {
		struct connect_conf *c = &cfg->connect[i];
		free(c->name);
		free(c->server_host);
		free(c->server_port);
		free(c->server_name);
		clist_free(&c->cert);
		clist_free(&c->key);
		clist_free(&c->ca);
		clist_free(&c->crl);
		free(c->identity_header);
		free(c->tls_priority);
	}
	for (size_t i = 0; i < cfg->ntrust; i++) {
		struct trust_conf *t = &cfg->trust[i];
		free(t->name);
		clist_free(&t->ca);
		clist_free(&t->crl);
		clist_free(&t->peer);
	}
	free(cfg->listen);
	free(cfg->connect);
	free(cfg->trust);
	free(cfg->file);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pid_file);
	free(cfg->metrics);
	free(cfg->status_socket);
	free(cfg->flow_host);
	free(cfg->ticket_key_file);
	free(cfg);
}
