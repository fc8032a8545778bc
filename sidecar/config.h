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
#include <stdint.h>

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
	int crl_stale_warn;            /* crl-stale: 0 refuse (default), 1 warn */
	unsigned verify_depth;         /* intermediate CAs a client chain may hold; 0: default */
	struct clist ocsp;             /* ocsp-response values ... */
	size_t *ocsp_cert;             /* ... and the index in cert of the one each is for */
	unsigned long max_conns_per_ip; /* open connections from one address; 0: unlimited */
	int max_conns_per_ip_set;      /* given in the file (else the default by client-auth) */
	uint32_t *bsrc;                /* backend-source: IPv4 loopback sources (host order), or NULL */
	size_t nbsrc;
	unsigned bsrc_line;
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
	int crl_stale_warn;            /* crl-stale: 0 refuse (default), 1 warn */
	unsigned verify_depth;         /* intermediate CAs the server chain may hold; 0: default */
};

/* backend-source: at most this many addresses per [listen]. */
#define BSRC_MAX 256

struct trust_conf {
	char *name;
	unsigned line;
	struct clist ca, crl, peer;
};

/* Where `sip-sidecar status` finds the daemon unless the file says otherwise
 * (used when the directory exists: systemd's RuntimeDirectory makes it). */
#define STATUS_SOCKET_DEFAULT "/run/sip-sidecar/status.sock"

struct config {
	char *file;
	char *user, *group;
	int allow_root;
	char *pid_file;
	int log_level;
	unsigned long max_connections;
	double handshake_timeout, idle_timeout, shutdown_timeout;
	double message_timeout;        /* a started message from a TLS peer must be complete within it (0: off) */
	size_t max_message_size;
	char *metrics;
	struct addr metrics_addr;
	unsigned long metrics_peers;   /* peer identities labelled in metrics, the rest "other" */
	char *status_socket;           /* unix socket for `sip-sidecar status`; NULL: off */
	int status_socket_set;         /* given in the file (else the default, when its directory exists) */
	unsigned long workers;         /* 0: number of CPUs */
	char *flow_host;               /* loopback address of the flow listeners (default 127.0.0.1) */
	unsigned flow_port;            /* first port (one per worker); 0: chosen by the system */
	double registration_margin;    /* a registered flow outlives its binding by this much */
	char *ticket_key_file;         /* session ticket keys shared by a farm (tickets.h); NULL: per start */
	unsigned ticket_key_line;
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

/* max-connections-per-ip on a listener without required client
 * certificates (MTLS listeners: unlimited, their peers are known). */
#define DEFAULT_MAX_CONNS_PER_IP 100

/* The default GnuTLS priority string: TLS 1.2 and 1.3 only; in TLS 1.2
 * only suites with forward secrecy (ECDHE) and AEAD (GCM, ChaCha20-Poly1305):
 * no RSA key transport, no CBC (t/33-tls-audit.sh checks it with testssl).
 * AES-128-GCM first, chosen by the server: the TLS 1.3 mandatory suite, and
 * its SHA-256 key schedule costs a third of SHA-384's in nettle. */
#define DEFAULT_TLS_PRIORITY \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:" \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

#endif
