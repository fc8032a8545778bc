/*
 * reload: SIGHUP. Build a complete new generation off to the side; swap it
 * in only if everything loaded, otherwise keep serving with the old one.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_RELOAD_H
#define SIDECAR_RELOAD_H

#include "ctx.h"

/* Loads sc->conf_path into a generation and binds its sockets (start-up).
 * Problems go to stderr as FILE:LINE: message. Returns 0 or -1. */
int sidecar_load_initial(struct sidecar *sc);
/* The SIGHUP handler's work. Returns 0 if the new configuration is live. */
int sidecar_reload(struct sidecar *sc);
/* Logs expiry warnings/errors for the current generation (start, reload, daily). */
void sidecar_expiry_report(struct sidecar *sc);

#endif
