/*
 * config: the INI configuration file -> struct config. Syntax and semantic
 * checks only (no files are opened here besides the config itself); loading
 * certificates is tls.c's job. Every problem is reported as "FILE:LINE: msg".
 * No libev, no GnuTLS: unit-testable.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_CONFIG_H
#define SIDECAR_CONFIG_H

#include <stddef.h>

#include "util.h"

/* A value with the line it came from, for FILE:LINE messages later. */
struct cval {
	char *s;
	unsigned line;
};

struct clist {
	struct cval *v;
	size_t n;
};

enum client_auth { CLIENT_AUTH_NONE, CLIENT_AUTH_OPTIONAL, CLIENT_AUTH_REQUIRE };
enum proxy_proto { PROXY_OFF, PROXY_V2 };

struct listen_conf {
	char *name;
	unsigned line;                 /* of the [listen NAME] header */
	struct addr bind;
	unsigned bind_line;
	struct addr backend;
	unsigned backend_line;
	struct clist cert, key, ca, crl, allow_peer, trust;
	enum client_auth client_auth;
	char *identity_header;         /* NULL: off */
	enum proxy_proto proxy_protocol;
	char *tls_priority;            /* NULL: default */
	unsigned tls_priority_line;
	int sip_framing;               /* 1 (default): frame and check SIP from the TLS side */
	char *advertise_host;          /* public host of this listener; NULL: from the certificate */
	unsigned advertise_port;       /* 0: the bind port */
	int topology;                  /* 1 (default): translate addresses (needs sip_framing) */
};

struct connect_conf {
	char *name;
	unsigned line;
	struct addr bind;
	unsigned bind_line;
	char *server_host, *server_port;
	unsigned server_line;
	char *server_name;             /* defaults to server_host when that is a name */
	struct clist cert, key, ca, crl;
	char *identity_header;         /* header naming the verified server on its messages */
	char *tls_priority;
	unsigned tls_priority_line;
	double connect_timeout;
	int sip_framing;
	int topology;                  /* 1 (default): translate the legacy server's addresses */
};

struct trust_conf {
	char *name;
	unsigned line;
	struct clist ca, crl, peer;
};

struct config {
	char *file;
	char *user, *group;
	int allow_root;
	char *pid_file;
	int log_level;
	unsigned long max_connections;
	double handshake_timeout, idle_timeout, shutdown_timeout;
	size_t max_message_size;
	char *metrics;
	struct addr metrics_addr;
	unsigned long workers;         /* 0: number of CPUs */
	char *flow_host;               /* loopback address of the flow listeners (default 127.0.0.1) */
	unsigned flow_port;            /* first port (one per worker); 0: chosen by the system */
	double registration_margin;    /* a registered flow outlives its binding by this much */
	struct listen_conf *listen;
	size_t nlisten;
	struct connect_conf *connect;
	size_t nconnect;
	struct trust_conf *trust;
	size_t ntrust;
};

/*
 * Reads and checks FILE. Returns a new config, or NULL with every problem
 * found appended to d (as "FILE:LINE: message").
 */
struct config *config_load(const char *file, struct diag *d);
void config_free(struct config *cfg);

/* The default GnuTLS priority string: TLS 1.2 and 1.3 only; in TLS 1.2
 * only suites with forward secrecy (ECDHE) and AEAD (GCM, ChaCha20-Poly1305):
 * no RSA key transport, no CBC (t/33-tls-audit.sh checks it with testssl).
 * AES-128-GCM first, chosen by the server: the TLS 1.3 mandatory suite, and
 * its SHA-256 key schedule costs a third of SHA-384's in nettle. */
#define DEFAULT_TLS_PRIORITY \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:" \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

#endif
