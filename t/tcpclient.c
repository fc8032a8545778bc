/*
 * tcpclient: the plaintext twin of tlsclient for the integration tests: it
 * plays a TCP client of the sidecar (e.g. the legacy server talking to a
 * [connect] listener, or a client that never starts TLS). Same options
 * (minus the TLS ones), I/O loop, SIP modes and exit codes as tlsclient;
 * see the comment at the top of tlsclient.c.
 *
 *   tcpclient -c HOST:PORT [--send FILE|-] [--out FILE] [--read-timeout MS]
 *             [--connect-timeout MS] [--max-time MS] [--hold MS] [--half-close]
 *             [--expect-close] [--repeat N] [--sip N | --pipeline N]
 *             [--header LINE]... [--body-size N] [--ruri URI] [-q]
 *
 * SPDX-License-Identifier: MIT
 */
#define CLIENT_PLAIN_ONLY 1
#include "tlsclient.c"
