/*
 * status: what `sip-sidecar status` shows (listeners, connected peers,
 * refusals of the last hour, certificates and their expiry), served on a
 * unix socket ([global] status-socket) and as /status.json on the metrics
 * page; and the command itself, which reads it from a running daemon.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_STATUS_H
#define SIDECAR_STATUS_H

#include <stddef.h>

#include "util.h"

struct sidecar;

enum status_fmt { STATUS_TEXT, STATUS_COLOR, STATUS_JSON };

/* Starts the refusal history (main context, once). */
void status_init(struct sidecar *sc);
/* Opens, moves or closes the status socket to match sc->gen. Problems
 * are logged; the daemon runs on without the socket. */
void status_apply(struct sidecar *sc);
/* Closes the socket (removing it) and stops the history. */
void status_close(struct sidecar *sc);
/* The status in one format (malloc'd, *len bytes). */
char *status_render(struct sidecar *sc, enum status_fmt fmt, size_t *len);
/* `sip-sidecar status [-c FILE] [--json]`: returns the exit status. */
int status_command(int argc, char **argv, const char *default_conf);

#endif
