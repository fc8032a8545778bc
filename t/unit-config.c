/*
 * unit-config: TAP tests of the configuration parser (sidecar/config.c) and
 * of the parsing helpers it rests on (sidecar/util.h: parse_duration,
 * parse_size, parse_uint, parse_bool, addr_parse, hostport_split).
 *
 * t/data/configs/good-*.conf are read field by field, defaults included.
 * Every t/data/configs/bad-*.conf is checked for its exact first
 * "FILE:LINE: message" diagnostic (and, where the file has one mistake, for
 * exactly one diagnostic); bad-several.conf for every diagnostic, in file
 * order. The data are found in $T_SRC/data/configs (T_SRC is set by make
 * check), else in t/data/configs (running from the top of the tree).
 *
 * SPDX-License-Identifier: MIT
 */
#ifdef HAVE_CONFIG_H
#include <autoconf.h>
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static char datadir[4096];

/* "DATADIR/NAME" in one of a few rotating static buffers. */
static const char *dpath(const char *name)
{
	static char buf[4][4096 + 256];
	static unsigned i;
	char *b = buf[i++ % 4];
	snprintf(b, sizeof buf[0], "%s/%s", datadir, name);
	return b;
}

/* "DATADIR/NAME:LINE: MSG", or "DATADIR/NAME: MSG" for line 0. */
static const char *want_diag(const char *name, unsigned line, const char *msg)
{
	static char buf[2][8192];
	static unsigned i;
	char *b = buf[i++ % 2];
	if (line)
		snprintf(b, sizeof buf[0], "%s:%u: %s", dpath(name), line, msg);
	else
		snprintf(b, sizeof buf[0], "%s: %s", dpath(name), msg);
	return b;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* The LINE of "FILE:LINE: msg", or 0. */
static unsigned diag_line(const char *msg, const char *file)
{
	size_t n = strlen(file);
	if (strncmp(msg, file, n) || msg[n] != ':')
		return 0;
	return (unsigned)strtoul(msg + n + 1, NULL, 10);
}

static unsigned short port_of(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

static void is_clist(const struct clist *l, const char *what, size_t n, const char *const *vals,
		     const unsigned *lines)
{
	if (!is_int((long long)n, (long long)l->n, "%s: %zu value(s)", what, n))
		return;
	for (size_t i = 0; i < n; i++) {
		is_str(vals[i], l->v[i].s, "%s[%zu] value", what, i);
		is_int(lines[i], l->v[i].line, "%s[%zu] line", what, i);
	}
}

static void is_addr(const struct addr *a, int family, const char *text, unsigned short port, const char *what)
{
	is_int(family, a->ss.ss_family, "%s: family", what);
	is_str(text, a->text, "%s: text", what);
	is_int(port, port_of(a), "%s: port", what);
	is_int(family == AF_INET ? (long long)sizeof(struct sockaddr_in) : (long long)sizeof(struct sockaddr_in6),
	       a->len, "%s: length", what);
}

/* ---- util.h helpers ---- */

static void test_parse_duration(void)
{
	static const struct {
		const char *s;
		double v;
	} good[] = {
		{ "250ms", 0.25 }, { "1.5s", 1.5 }, { "2m", 120 }, { "1h", 3600 },
		{ "10", 10 },      { "0", 0 },      { "10s", 10 }, { "500ms", 0.5 },
	};
	static const char *const bad[] = { "", "5x", "-1", "ms", "s", "1 s", "10S", "1.5.2s", "+5s", " 5s", "5s " };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		double v = -1;
		int rc = parse_duration(good[i].s, &v);
		ok(rc == 0 && v == good[i].v, "parse_duration(\"%s\") = %g", good[i].s, good[i].v);
		if (rc || v != good[i].v)
			diag("rc %d, value %g", rc, v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		double v = 42;
		ok(parse_duration(bad[i], &v) < 0 && v == 42, "parse_duration(\"%s\") fails, output untouched", bad[i]);
	}
}

static void test_parse_size(void)
{
	static const struct {
		const char *s;
		size_t v;
	} good[] = {
		{ "64k", 65536 }, { "1m", 1048576 }, { "12", 12 }, { "0", 0 }, { "256", 256 }, { "1024m", 1u << 30 },
	};
	static const char *const bad[] = { "1g", "", "-1", "1.5", "k", "64kb", "64 k", "2048m", "5x" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		size_t v = 1;
		int rc = parse_size(good[i].s, &v);
		ok(rc == 0 && v == good[i].v, "parse_size(\"%s\") = %zu", good[i].s, good[i].v);
		if (rc || v != good[i].v)
			diag("rc %d, value %zu", rc, v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t v = 42;
		ok(parse_size(bad[i], &v) < 0 && v == 42, "parse_size(\"%s\") fails, output untouched", bad[i]);
	}
}

static void test_parse_uint_bool(void)
{
	unsigned long u = 7;
	ok(parse_uint("0", 10, &u) == 0 && u == 0, "parse_uint(\"0\") = 0");
	ok(parse_uint("65535", 65535, &u) == 0 && u == 65535, "parse_uint at the maximum");
	u = 7;
	ok(parse_uint("65536", 65535, &u) < 0 && u == 7, "parse_uint above the maximum fails");
	ok(parse_uint("+1", 10, &u) < 0, "parse_uint(\"+1\") fails");
	ok(parse_uint("-1", 10, &u) < 0, "parse_uint(\"-1\") fails");
	ok(parse_uint("", 10, &u) < 0, "parse_uint(\"\") fails");
	ok(parse_uint("1x", 10, &u) < 0, "parse_uint(\"1x\") fails");
	ok(parse_uint("99999999999999999999999", (unsigned long)-1, &u) < 0, "parse_uint overflow fails");

	static const char *const on[] = { "on", "yes", "true", "1", "ON", "Yes" };
	static const char *const off[] = { "off", "no", "false", "0", "OFF" };
	for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
		int b = -1;
		ok(parse_bool(on[i], &b) == 0 && b == 1, "parse_bool(\"%s\") = 1", on[i]);
	}
	for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
		int b = -1;
		ok(parse_bool(off[i], &b) == 0 && b == 0, "parse_bool(\"%s\") = 0", off[i]);
	}
	int b = -1;
	ok(parse_bool("maybe", &b) < 0 && b == -1, "parse_bool(\"maybe\") fails");
	ok(parse_bool("", &b) < 0, "parse_bool(\"\") fails");
	ok(parse_bool("2", &b) < 0, "parse_bool(\"2\") fails");
}

static void test_addr_parse(void)
{
	struct addr a;
	ok(addr_parse("127.0.0.1:5061", &a) == 0, "addr_parse IPv4");
	is_addr(&a, AF_INET, "127.0.0.1:5061", 5061, "127.0.0.1:5061");
	struct in_addr want4;
	inet_pton(AF_INET, "127.0.0.1", &want4);
	ok(!memcmp(&((struct sockaddr_in *)&a.ss)->sin_addr, &want4, 4), "IPv4 address bytes");

	ok(addr_parse("[::1]:5061", &a) == 0, "addr_parse IPv6");
	is_addr(&a, AF_INET6, "[::1]:5061", 5061, "[::1]:5061");
	struct in6_addr want6;
	inet_pton(AF_INET6, "::1", &want6);
	ok(!memcmp(&((struct sockaddr_in6 *)&a.ss)->sin6_addr, &want6, 16), "IPv6 address bytes");

	ok(addr_parse("[2001:DB8:0:0::1]:0", &a) == 0, "addr_parse long IPv6, port 0");
	is_str("[2001:db8::1]:0", a.text, "IPv6 text is canonical");
	ok(addr_parse("0.0.0.0:65535", &a) == 0 && port_of(&a) == 65535, "port 65535");

	static const char *const bad[] = {
		"::1:5061", "1.2.3.4", "[::1]", "[::1]5061", "[::1:5061", "[]:5061", "1.2.3.4:",
		"1.2.3.4:65536", "1.2.3.4:70000", "1.2.3.256:5061", "localhost:5061", ":5061",
		"1.2.3.4:-1", "1.2.3.4:+1", "",
	};
	/* Not asserted (see the report): "[1.2.3.4]:5061", an IPv4 address in
	 * brackets, is outside "IPv4:PORT or [IPv6]:PORT" but is accepted. */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ok(addr_parse(bad[i], &a) < 0, "addr_parse(\"%s\") fails", bad[i]);
}

static void test_hostport_split(void)
{
	static const struct {
		const char *s, *host, *port;
	} good[] = {
		{ "sip.example.net:5061", "sip.example.net", "5061" },
		{ "[2001:db8::1]:5061", "2001:db8::1", "5061" },
		{ "192.0.2.1:5060", "192.0.2.1", "5060" },
		{ "[::1]:0", "::1", "0" },
		{ "h:65535", "h", "65535" },
	};
	static const char *const bad[] = { "host", ":5061", "a:b:5061", "[::1]", "[]:5061", "host:99999",
					   "host:", "[::1]x5061", "host:50x", "[::1:5061" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char *host = NULL, *port = NULL;
		ok(hostport_split(good[i].s, &host, &port) == 0, "hostport_split(\"%s\")", good[i].s);
		is_str(good[i].host, host, "... host");
		is_str(good[i].port, port, "... port");
		free(host);
		free(port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *host = NULL, *port = NULL;
		ok(hostport_split(bad[i], &host, &port) < 0, "hostport_split(\"%s\") fails", bad[i]);
		free(host);
		free(port);
	}
}

/* ---- good configurations ---- */

static void test_good_full(void)
{
	const char *f = dpath("good-full.conf");
	struct diag d = { 0 };
	struct config *c = config_load(f, &d);
	ok(c != NULL, "good-full.conf loads");
	is_int(0, (long long)d.n, "good-full.conf: no diagnostics");
	for (size_t i = 0; i < d.n; i++)
		diag("%s", d.msg[i]);
	diag_free(&d);
	if (!c)
		bail("good-full.conf does not load");

	is_str(f, c->file, "file name kept");
	/* [global] */
	is_str("sip-sidecar", c->user, "user");
	is_str("sip-sidecar", c->group, "group");
	is_int(0, c->allow_root, "allow-root = no");
	is_str("/run/sip-sidecar.pid", c->pid_file, "pid-file");
	is_int(LOG_LVL_DEBUG, c->log_level, "log-level = debug");
	is_int(12345, (long long)c->max_connections, "max-connections");
	ok(c->handshake_timeout == 2.5, "handshake-timeout = 2500ms -> 2.5 s (%g)", c->handshake_timeout);
	ok(c->idle_timeout == 3600, "idle-timeout = 1h -> 3600 s (%g)", c->idle_timeout);
	ok(c->shutdown_timeout == 30, "shutdown-timeout = 30s (%g)", c->shutdown_timeout);
	is_int(128 * 1024, (long long)c->max_message_size, "max-message-size = 128k, trailing comment stripped");
	is_str("127.0.0.1:9161", c->metrics, "metrics");
	is_addr(&c->metrics_addr, AF_INET, "127.0.0.1:9161", 9161, "metrics address");
	is_int(3, (long long)c->workers, "workers");

	is_int(2, (long long)c->nlisten, "two [listen]");
	is_int(1, (long long)c->nconnect, "one [connect]");
	is_int(2, (long long)c->ntrust, "two [trust]");
	if (c->nlisten != 2 || c->nconnect != 1 || c->ntrust != 2)
		bail("section counts are wrong");

	/* [listen public]: TLS only, two certificates */
	const struct listen_conf *l = &c->listen[0];
	is_str("public", l->name, "listen[0] name");
	is_int(19, l->line, "listen[0] header line");
	is_addr(&l->bind, AF_INET, "0.0.0.0:5061", 5061, "listen[0] bind");
	is_int(20, l->bind_line, "listen[0] bind line");
	is_addr(&l->backend, AF_INET, "127.0.0.1:5060", 5060, "listen[0] backend");
	is_int(21, l->backend_line, "listen[0] backend line");
	is_clist(&l->cert, "listen[0] cert", 2,
		 (const char *const[]){ "/etc/sip-sidecar/rsa.pem", "/etc/sip-sidecar/ecdsa.pem" },
		 (const unsigned[]){ 22, 24 });
	is_clist(&l->key, "listen[0] key", 2,
		 (const char *const[]){ "/etc/sip-sidecar/rsa.key", "/etc/sip-sidecar/ecdsa.key" },
		 (const unsigned[]){ 23, 25 });
	is_int(CLIENT_AUTH_NONE, l->client_auth, "listen[0] client-auth defaults to none");
	ok(l->ca.n == 0 && l->crl.n == 0 && l->allow_peer.n == 0 && l->trust.n == 0,
	   "listen[0] no ca/crl/allow-peer/trust");
	ok(l->identity_header == NULL, "listen[0] identity-header defaults to off");
	is_int(PROXY_OFF, l->proxy_protocol, "listen[0] proxy-protocol defaults to off");
	ok(l->tls_priority == NULL, "listen[0] tls-priority defaults to NULL (built-in)");
	is_int(1, l->sip_framing, "listen[0] sip-framing defaults to on");

	/* [listen peers]: MTLS on [::1] */
	l = &c->listen[1];
	is_str("peers", l->name, "listen[1] name (trailing comment on the header)");
	is_int(27, l->line, "listen[1] header line");
	is_addr(&l->bind, AF_INET6, "[::1]:5062", 5062, "listen[1] bind");
	is_int(28, l->bind_line, "listen[1] bind line");
	is_addr(&l->backend, AF_INET6, "[::1]:5060", 5060, "listen[1] backend");
	is_clist(&l->cert, "listen[1] cert", 1, (const char *const[]){ "/etc/sip-sidecar/peers.pem" },
		 (const unsigned[]){ 30 });
	is_clist(&l->key, "listen[1] key", 1, (const char *const[]){ "/etc/sip-sidecar/peers.key" },
		 (const unsigned[]){ 31 });
	is_int(CLIENT_AUTH_REQUIRE, l->client_auth, "listen[1] client-auth = require");
	is_clist(&l->ca, "listen[1] ca", 1, (const char *const[]){ "/etc/sip-sidecar/own-ca.pem" },
		 (const unsigned[]){ 33 });
	is_clist(&l->crl, "listen[1] crl", 1, (const char *const[]){ "/etc/sip-sidecar/own-ca.crl" },
		 (const unsigned[]){ 34 });
	is_clist(&l->allow_peer, "listen[1] allow-peer", 2,
		 (const char *const[]){ "sip.partner.example.net", "*.example.org" }, (const unsigned[]){ 35, 36 });
	is_clist(&l->trust, "listen[1] trust", 2, (const char *const[]){ "partner-a", "partner-b" },
		 (const unsigned[]){ 37, 38 });
	is_str("X-TLS-Peer-Identity", l->identity_header, "listen[1] identity-header");
	is_int(PROXY_V2, l->proxy_protocol, "listen[1] proxy-protocol = v2");
	is_str("NORMAL:-VERS-TLS1.0:-VERS-TLS1.1", l->tls_priority, "listen[1] tls-priority");
	is_int(41, l->tls_priority_line, "listen[1] tls-priority line");
	is_int(0, l->sip_framing, "listen[1] sip-framing = off");

	/* [connect out] */
	const struct connect_conf *k = &c->connect[0];
	is_str("out", k->name, "connect name");
	is_int(44, k->line, "connect header line");
	is_addr(&k->bind, AF_INET, "127.0.0.1:5070", 5070, "connect bind");
	is_int(45, k->bind_line, "connect bind line");
	is_str("sip.partner.example.net", k->server_host, "connect server host");
	is_str("5061", k->server_port, "connect server port");
	is_int(46, k->server_line, "connect server line");
	is_str("sip.partner.example.net", k->server_name, "connect server-name defaults to the server host name");
	is_clist(&k->cert, "connect cert", 1, (const char *const[]){ "/etc/sip-sidecar/client.pem" },
		 (const unsigned[]){ 47 });
	is_clist(&k->key, "connect key", 1, (const char *const[]){ "/etc/sip-sidecar/client.key" },
		 (const unsigned[]){ 48 });
	is_clist(&k->ca, "connect ca", 2,
		 (const char *const[]){ "/etc/sip-sidecar/partner-ca.pem", "/etc/sip-sidecar/partner-ca2.pem" },
		 (const unsigned[]){ 49, 50 });
	is_clist(&k->crl, "connect crl", 1, (const char *const[]){ "/etc/sip-sidecar/partner-ca.crl" },
		 (const unsigned[]){ 51 });
	ok(k->connect_timeout == 120, "connect-timeout = 2m -> 120 s (%g)", k->connect_timeout);
	ok(k->identity_header == NULL, "connect identity-header defaults to off");
	ok(k->tls_priority == NULL, "connect tls-priority defaults to NULL");
	is_int(1, k->sip_framing, "connect sip-framing defaults to on");

	/* [trust] */
	const struct trust_conf *t = &c->trust[0];
	is_str("partner-a", t->name, "trust[0] name");
	is_int(54, t->line, "trust[0] header line");
	is_clist(&t->ca, "trust[0] ca", 1, (const char *const[]){ "/etc/sip-sidecar/partner-a-root.pem" },
		 (const unsigned[]){ 55 });
	is_clist(&t->crl, "trust[0] crl", 1, (const char *const[]){ "/etc/sip-sidecar/partner-a.crl" },
		 (const unsigned[]){ 56 });
	is_clist(&t->peer, "trust[0] peer", 1, (const char *const[]){ "sip.partner-a.example" },
		 (const unsigned[]){ 57 });
	t = &c->trust[1];
	is_str("partner-b", t->name, "trust[1] name");
	is_clist(&t->ca, "trust[1] ca", 1, (const char *const[]){ "/etc/sip-sidecar/partner-b-root.pem" },
		 (const unsigned[]){ 60 });
	is_int(0, (long long)t->crl.n, "trust[1] no crl");
	is_clist(&t->peer, "trust[1] peer", 2, (const char *const[]){ "sip.partner-b.example", "sip2.partner-b.example" },
		 (const unsigned[]){ 61, 62 });
	config_free(c);
}

/* ticket-key-file and backend-source (a farm of hosts) */
static void test_good_farm(void)
{
	struct diag d = { 0 };
	struct config *c = config_load(dpath("good-farm.conf"), &d);
	ok(c != NULL, "good-farm.conf loads");
	for (size_t i = 0; i < d.n; i++)
		diag("%s", d.msg[i]);
	diag_free(&d);
	if (!c || c->nlisten != 3)
		bail("good-farm.conf does not load");
	is_str("/etc/sip-sidecar/ticket.keys", c->ticket_key_file, "ticket-key-file");
	is_int(4, c->ticket_key_line, "ticket-key-file: its line");
	const struct listen_conf *a = &c->listen[0], *b = &c->listen[1];
	is_int(8, (long long)a->nbsrc, "a range of 8 sources");
	is_int(0x7f000002, a->bsrc[0], "... from 127.0.0.2");
	is_int(0x7f000009, a->bsrc[7], "... to 127.0.0.9");
	is_int(11, a->bsrc_line, "backend-source: its line");
	is_int(4, (long long)b->nbsrc, "a list with a range in it: 4 sources");
	ok(b->nbsrc == 4 && b->bsrc[0] == 0x7f000014 && b->bsrc[1] == 0x7f00001e && b->bsrc[2] == 0x7f00001f &&
		   b->bsrc[3] == 0x7f000101,
	   "... 127.0.0.20, 127.0.0.30, 127.0.0.31, 127.0.1.1 in order");
	ok(c->listen[2].nbsrc == 0 && c->listen[2].bsrc == NULL, "no backend-source: none");
	config_free(c);
	c = config_load(dpath("good-minimal.conf"), &d);
	ok(c && !c->ticket_key_file, "no ticket-key-file by default");
	config_free(c);
	diag_free(&d);
}

static void test_good_minimal(void)
{
	const char *f = dpath("good-minimal.conf");
	/* d already holds a problem from elsewhere: it must not make this load fail */
	struct diag d = { 0 };
	diag_add(&d, "elsewhere", 1, "earlier problem");
	struct config *c = config_load(f, &d);
	ok(c != NULL, "good-minimal.conf loads (with an unrelated diagnostic already in the list)");
	is_int(1, (long long)d.n, "good-minimal.conf: no diagnostics added");
	for (size_t i = 1; i < d.n; i++)
		diag("%s", d.msg[i]);
	diag_free(&d);
	if (!c)
		bail("good-minimal.conf does not load");

	ok(c->user == NULL && c->group == NULL && c->pid_file == NULL && c->metrics == NULL,
	   "no user, group, pid-file, metrics");
	is_int(0, c->allow_root, "allow-root defaults to off");
	is_int(LOG_LVL_INFO, c->log_level, "log-level defaults to info");
	is_int(20000, (long long)c->max_connections, "max-connections defaults to 20000");
	ok(c->handshake_timeout == 10, "handshake-timeout defaults to 10 s (%g)", c->handshake_timeout);
	ok(c->idle_timeout == 3900, "idle-timeout defaults to 3900 s, past a 3600 s registration (%g)", c->idle_timeout);
	ok(c->shutdown_timeout == 5, "shutdown-timeout defaults to 5 s (%g)", c->shutdown_timeout);
	is_int(65536, (long long)c->max_message_size, "max-message-size defaults to 65536");
	ok(c->message_timeout == 30, "message-timeout defaults to 30 s (%g)", c->message_timeout);
	is_int(0, (long long)c->workers, "workers defaults to 0 (number of CPUs)");
	is_int(1, (long long)c->nlisten, "one [listen]");
	is_int(1, (long long)c->nconnect, "one [connect]");
	is_int(0, (long long)c->ntrust, "no [trust]");
	if (c->nlisten != 1 || c->nconnect != 1)
		bail("section counts are wrong");

	const struct listen_conf *l = &c->listen[0];
	is_int(CLIENT_AUTH_NONE, l->client_auth, "client-auth defaults to none");
	is_int(PROXY_OFF, l->proxy_protocol, "proxy-protocol defaults to off");
	is_int(1, l->sip_framing, "listen sip-framing defaults to on");
	ok(l->identity_header == NULL && l->tls_priority == NULL, "no identity-header, no tls-priority");

	const struct connect_conf *k = &c->connect[0];
	is_str("2001:db8::1", k->server_host, "connect server host from [IPv6]:port");
	is_str("5061", k->server_port, "connect server port");
	is_str("sip.b.example", k->server_name, "explicit server-name for an address server");
	ok(k->connect_timeout == 5, "connect-timeout defaults to 5 s (%g)", k->connect_timeout);
	is_int(1, k->sip_framing, "connect sip-framing = yes");
	is_str("X-Server", k->identity_header, "connect identity-header");
	is_str("NORMAL", k->tls_priority, "connect tls-priority");
	ok(k->cert.n == 0 && k->key.n == 0, "connect without a client certificate");
	config_free(c);
}

static void test_good_limits(void)
{
	const char *f = dpath("good-limits.conf");
	struct diag d = { 0 };
	struct config *c = config_load(f, &d);
	ok(c != NULL, "good-limits.conf loads");
	for (size_t i = 0; i < d.n; i++)
		diag("%s", d.msg[i]);
	diag_free(&d);
	if (!c || c->nlisten != 5)
		bail("good-limits.conf does not load as 5 listeners");
	ok(c->message_timeout == 2.5, "message-timeout = 2500ms -> 2.5 s (%g)", c->message_timeout);
	is_int(DEFAULT_MAX_CONNS_PER_IP, (long long)c->listen[0].max_conns_per_ip,
	       "max-connections-per-ip defaults to 100 with client-auth = none");
	is_int(0, (long long)c->listen[1].max_conns_per_ip,
	       "max-connections-per-ip defaults to unlimited (0) with client-auth = require");
	is_int(DEFAULT_MAX_CONNS_PER_IP, (long long)c->listen[2].max_conns_per_ip,
	       "max-connections-per-ip defaults to 100 with client-auth = optional");
	is_int(50, (long long)c->listen[3].max_conns_per_ip, "max-connections-per-ip = 50 on an MTLS listener");
	is_int(0, (long long)c->listen[4].max_conns_per_ip, "max-connections-per-ip = unlimited -> 0");
	config_free(c);
}

/* ---- bad configurations ---- */

#define ADDR_HINT " (use IPv4:PORT or [IPv6]:PORT)"
#define DUR_HINT " (use e.g. 500ms, 10s, 5m, 1h)"
#define SIZE_HINT " (use e.g. 64k; at least 256)"
#define BSRC_HINT " (use e.g. 127.0.0.2-127.0.0.9, or a list 127.0.0.2, 127.0.0.3)"

/* crl-stale, verify-depth and ocsp-response: values and defaults. */
static void test_good_edges(void)
{
	struct diag d = { 0 };
	struct config *c = config_load(dpath("good-edges.conf"), &d);
	ok(c != NULL, "good-edges.conf loads");
	if (!c) {
		for (size_t i = 0; i < d.n; i++)
			diag("%s", d.msg[i]);
		bail("good-edges.conf does not load");
	}
	const struct listen_conf *l = &c->listen[0];
	is_int(1, l->crl_stale_warn, "listen crl-stale = warn");
	is_int(10, l->verify_depth, "listen verify-depth = 10");
	is_clist(&l->ocsp, "listen ocsp-response", 1, (const char *const[]){ "b.ocsp" }, (const unsigned[]){ 8 });
	is_int(1, (long long)l->ocsp_cert[0], "... for the second cert (the one above it)");
	is_int(0, c->connect[0].crl_stale_warn, "connect crl-stale defaults to refuse");
	is_int(0, c->connect[0].verify_depth, "connect verify-depth defaults to 0 (verify.c: 8)");
	is_int(0, c->connect[1].crl_stale_warn, "connect crl-stale = refuse");
	is_int(1, c->connect[1].verify_depth, "connect verify-depth = 1");
	config_free(c);
	diag_free(&d);
}

static const struct bad {
	const char *file;
	unsigned line;
	const char *msg;
	int only; /* the file has this one mistake: exactly one diagnostic */
} bad[] = {
	{ "bad-unknown-key.conf", 3, "unknown key 'frobnicate'", 1 },
	{ "bad-unknown-section.conf", 2, "unknown section [frobnicate]", 1 },
	{ "bad-outside-section.conf", 2, "'user' outside of a section", 1 },
	{ "bad-missing-eq.conf", 3, "expected 'key = value'", 1 },
	{ "bad-duplicate-key.conf", 7, "duplicate key 'backend'", 1 },
	{ "bad-duration.conf", 3, "invalid duration '5x'" DUR_HINT, 1 },
	{ "bad-duration-negative.conf", 3, "invalid duration '-1'" DUR_HINT, 1 },
	{ "bad-size.conf", 3, "invalid size '1g'" SIZE_HINT, 1 },
	{ "bad-size-small.conf", 3, "invalid size '100'" SIZE_HINT, 1 },
	{ "bad-bool.conf", 7, "invalid boolean 'maybe' (use on or off)", 1 },
	{ "bad-client-auth.conf", 7, "invalid client-auth 'mandatory' (none, optional or require)", 0 },
	{ "bad-proxy-protocol.conf", 7, "invalid proxy-protocol 'v1' (off or v2)", 1 },
	{ "bad-log-level.conf", 3, "invalid log-level 'loud' (error, warn, info or debug)", 1 },
	{ "bad-number.conf", 3, "invalid number '-5'", 1 },
	{ "bad-addr-noport.conf", 3, "invalid address '127.0.0.1'" ADDR_HINT, 1 },
	{ "bad-addr-brackets.conf", 3, "invalid address '[::1:5061'" ADDR_HINT, 1 },
	{ "bad-addr-v6-bare.conf", 4, "invalid address '::1:5060'" ADDR_HINT, 1 },
	{ "bad-addr-port.conf", 4, "invalid address '127.0.0.1:70000'" ADDR_HINT, 1 },
	{ "bad-addr-metrics.conf", 3, "invalid address 'localhost:9161'" ADDR_HINT, 1 },
	{ "bad-empty-value.conf", 3, "empty value for 'user'", 1 },
	{ "bad-listen-no-bind.conf", 2, "[listen a] needs 'bind'", 1 },
	{ "bad-listen-no-backend.conf", 2, "[listen a] needs 'backend'", 1 },
	{ "bad-listen-no-cert.conf", 2, "[listen a] needs 'cert' and 'key'", 1 },
	{ "bad-cert-key-count.conf", 2, "[listen a] has 2 'cert' but 1 'key': one key per cert", 1 },
	{ "bad-require-no-ca.conf", 2, "[listen a] client-auth needs 'ca' or 'trust'", 1 },
	{ "bad-allow-peer-no-ca.conf", 9, "allow-peer needs 'ca' in the same section", 1 },
	{ "bad-ca-auth-none.conf", 2, "[listen a] has ca/crl/allow-peer/trust but client-auth = none", 1 },
	{ "bad-missing-trust.conf", 9, "no [trust nope] section", 1 },
	{ "bad-duplicate-section.conf", 8, "duplicate section [listen a]", 1 },
	{ "bad-same-bind.conf", 9, "address [::1]:5061 is already bound by [listen a]", 1 },
	{ "bad-connect-bind-taken.conf", 9, "address 127.0.0.1:5061 is already bound by [listen a]", 1 },
	{ "bad-connect-no-ca.conf", 2, "[connect c] needs 'ca' to verify the server", 1 },
	{ "bad-connect-ip-server.conf", 4,
	  "[connect c] server is an address: set 'server-name' to the identity it must prove", 1 },
	{ "bad-connect-cert-no-key.conf", 2, "[connect c] needs both 'cert' and 'key', or neither", 1 },
	{ "bad-connect-server.conf", 4, "invalid server 'sip.c.example' (use HOST:PORT)", 0 },
	{ "bad-trust-no-peer.conf", 8, "[trust p] needs at least one 'peer'", 1 },
	{ "bad-trust-no-ca.conf", 8, "[trust p] needs 'ca'", 1 },
	{ "bad-identity-header.conf", 7, "invalid header name 'X-Peer:Id'", 1 },
	{ "bad-section-noname.conf", 2, "section [listen] needs one name without spaces, e.g. [listen public]", 1 },
	{ "bad-section-global-name.conf", 2, "section [global] needs no name", 1 },
	{ "bad-section-unclosed.conf", 2, "section header without ']'", 1 },
	{ "bad-nul.conf", 3, "NUL byte in line", 1 },
	{ "bad-empty.conf", 0, "no [listen] or [connect] section: nothing to do", 1 },
	{ "bad-crl-stale.conf", 7, "invalid crl-stale 'maybe' (refuse or warn)", 1 },
	{ "bad-verify-depth.conf", 6, "invalid verify-depth '0' (1 to 15)", 1 },
	{ "bad-ocsp-before-cert.conf", 5, "ocsp-response must follow the 'cert' it is for", 1 },
	{ "bad-ocsp-twice.conf", 7, "certificate a.pem already has an ocsp-response (line 6)", 1 },
	{ "bad-per-ip.conf", 7, "invalid max-connections-per-ip '0' (a number from 1, or unlimited)", 1 },
	{ "bad-backend-source.conf", 7, "invalid backend-source '10.0.0.1-10.0.0.5': not an IPv4 loopback address (127.x.y.z)" BSRC_HINT, 1 },
	{ "bad-backend-source-down.conf", 7, "invalid backend-source '127.0.0.9-127.0.0.2': a range must go upwards" BSRC_HINT, 1 },
	{ "bad-backend-source-many.conf", 7, "invalid backend-source '127.0.0.0-127.0.1.255': more than 256 addresses" BSRC_HINT, 1 },
	{ "bad-backend-source-twice.conf", 7, "invalid backend-source '127.0.0.2-127.0.0.4, 127.0.0.3': an address given twice" BSRC_HINT, 1 },
	{ "bad-backend-source-v6.conf", 7, "backend-source needs an IPv4 loopback backend (127.x.y.z:PORT), not [::1]:5060", 1 },
};

static void test_bad_one(const struct bad *b)
{
	struct diag d = { 0 };
	struct config *c = config_load(dpath(b->file), &d);
	ok(c == NULL, "%s is refused", b->file);
	config_free(c);
	is_str(want_diag(b->file, b->line, b->msg), d.n ? d.msg[0] : NULL, "%s: first diagnostic", b->file);
	if (b->only && !is_int(1, (long long)d.n, "%s: exactly one diagnostic", b->file))
		for (size_t i = 0; i < d.n; i++)
			diag("%s", d.msg[i]);
	diag_free(&d);
}

/* Every bad-*.conf in the data directory is in the table (and vice versa). */
static void test_bad_table_complete(void)
{
	DIR *dir = opendir(datadir);
	if (!dir)
		bail("cannot open %s: %s", datadir, strerror(errno));
	unsigned files = 0, listed = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "bad-", 4) || !ends_with(e->d_name, ".conf"))
			continue;
		files++;
		int found = 0;
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
			found |= !strcmp(bad[i].file, e->d_name);
		if (found)
			listed++;
		else if (strcmp(e->d_name, "bad-several.conf") && strcmp(e->d_name, "bad-group-no-user.conf") &&
			 strcmp(e->d_name, "bad-outside-after-error.conf") &&
			 strcmp(e->d_name, "bad-two-bad-binds.conf"))
			diag("%s is not tested", e->d_name);
		else
			listed++;
	}
	closedir(dir);
	is_int(files, listed, "every bad-*.conf is tested");
}

static void test_missing_file(void)
{
	struct diag d = { 0 };
	struct config *c = config_load(dpath("no-such-file.conf"), &d);
	ok(c == NULL, "a missing file is refused");
	is_int(1, (long long)d.n, "one diagnostic");
	char want[8192];
	snprintf(want, sizeof want, "%s: cannot open: %s", dpath("no-such-file.conf"), strerror(ENOENT));
	is_str(want, d.n ? d.msg[0] : NULL, "'FILE: cannot open: reason'");
	diag_free(&d);
}

static void test_group_without_user(void)
{
	const char *f = dpath("bad-group-no-user.conf");
	struct diag d = { 0 };
	struct config *c = config_load(f, &d);
	ok(c == NULL, "bad-group-no-user.conf is refused");
	config_free(c);
	is_int(1, (long long)d.n, "one diagnostic");
	const char *m = d.n ? d.msg[0] : "";
	ok(!strncmp(m, f, strlen(f)) && m[strlen(f)] == ':', "names the file: %s", m);
	ok(ends_with(m, ": 'group' needs 'user'"), "says 'group' needs 'user'");
	diag_free(&d);
}

static void test_several(void)
{
	static const struct {
		unsigned line;
		const char *msg;
	} want[] = {
		{ 3, "invalid duration 'soon'" DUR_HINT },
		{ 4, "invalid log-level 'loud' (error, warn, info or debug)" },
		{ 5, "unknown key 'frobnicate'" },
		{ 8, "invalid address '127.0.0.1'" ADDR_HINT },
		{ 12, "invalid proxy-protocol 'v3' (off or v2)" },
		{ 13, "unknown section [bogus]" },
		{ 15, "[trust t] needs at least one 'peer'" },
	};
	const size_t nwant = sizeof want / sizeof want[0];
	const char *f = dpath("bad-several.conf");
	struct diag d = { 0 };
	struct config *c = config_load(f, &d);
	ok(c == NULL, "bad-several.conf is refused");
	config_free(c);
	ok(d.n > 1, "several diagnostics (%zu)", d.n);
	is_int((long long)nwant, (long long)d.n, "every mistake reported once");
	unsigned prev = 0;
	int increasing = 1;
	for (size_t i = 0; i < d.n; i++) {
		unsigned line = diag_line(d.msg[i], f);
		if (line <= prev)
			increasing = 0;
		prev = line;
	}
	ok(increasing, "line numbers increase");
	for (size_t i = 0; i < nwant; i++)
		is_str(want_diag("bad-several.conf", want[i].line, want[i].msg), i < d.n ? d.msg[i] : NULL,
		       "bad-several.conf: diagnostic %zu", i + 1);
	diag_free(&d);
}

/* A syntax error before any section must not hide a key outside of a section. */
static void test_outside_after_error(void)
{
	const char *f = dpath("bad-outside-after-error.conf");
	struct diag d = { 0 };
	struct config *c = config_load(f, &d);
	ok(c == NULL, "bad-outside-after-error.conf is refused");
	config_free(c);
	is_str(want_diag("bad-outside-after-error.conf", 2, "expected 'key = value'"), d.n ? d.msg[0] : NULL,
	       "bad-outside-after-error.conf: first diagnostic");
	is_str(want_diag("bad-outside-after-error.conf", 3, "'user' outside of a section"),
	       d.n > 1 ? d.msg[1] : NULL, "bad-outside-after-error.conf: second diagnostic");
	diag_free(&d);
}

/* Two bad binds: each reported, in order. */
static void test_two_bad_binds(void)
{
	struct diag d = { 0 };
	struct config *c = config_load(dpath("bad-two-bad-binds.conf"), &d);
	ok(c == NULL, "bad-two-bad-binds.conf is refused");
	config_free(c);
	is_str(want_diag("bad-two-bad-binds.conf", 9, "invalid address '192.0.2.1'" ADDR_HINT), d.n ? d.msg[0] : NULL,
	       "bad-two-bad-binds.conf: first diagnostic");
	is_str(want_diag("bad-two-bad-binds.conf", 15, "invalid address '192.0.2.2'" ADDR_HINT),
	       d.n > 1 ? d.msg[1] : NULL, "bad-two-bad-binds.conf: second diagnostic");
	is_int(2, (long long)d.n, "bad-two-bad-binds.conf: exactly two diagnostics");
	diag_free(&d);
}

/* CRLF line ends and no newline at the end of the file. */
static void test_crlf(void)
{
	struct diag d = { 0 };
	struct config *c = config_load(dpath("good-crlf.conf"), &d);
	ok(c != NULL && d.n == 0, "good-crlf.conf loads");
	for (size_t i = 0; i < d.n; i++)
		diag("%s", d.msg[i]);
	diag_free(&d);
	if (!c)
		return;
	is_str("127.0.0.1:5060", c->nlisten ? c->listen[0].backend.text : NULL, "CR and trailing blanks trimmed");
	is_str("a.key", c->nlisten && c->listen[0].key.n ? c->listen[0].key.v[0].s : NULL,
	       "last line without a newline is read");
	config_free(c);
}

int main(void)
{
	const char *src = getenv("T_SRC");
	snprintf(datadir, sizeof datadir, "%s/data/configs", src && *src ? src : "t");
	char probe[4096 + 64];
	snprintf(probe, sizeof probe, "%s/good-full.conf", datadir);
	FILE *fp = fopen(probe, "r");
	if (!fp)
		bail("cannot find %s: run from the top of the tree or set T_SRC to the t/ source directory", probe);
	fclose(fp);

	plan_lazy();
	test_good_edges();
	test_parse_duration();
	test_parse_size();
	test_parse_uint_bool();
	test_addr_parse();
	test_hostport_split();
	test_good_full();
	test_good_minimal();
	test_good_limits();
	test_good_farm();
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		test_bad_one(&bad[i]);
	test_missing_file();
	test_group_without_user();
	test_several();
	test_outside_after_error();
	test_two_bad_binds();
	test_crlf();
	test_bad_table_complete();
	return tap_done();
}
