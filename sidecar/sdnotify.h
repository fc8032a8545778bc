/*
 * sdnotify: the systemd notification protocol (READY, RELOADING, STOPPING,
 * STATUS, WATCHDOG). Uses libsystemd when configure found it, else speaks
 * the datagram protocol itself. Silent no-ops outside systemd.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_SDNOTIFY_H
#define SIDECAR_SDNOTIFY_H

#include <stdint.h>

void sdn_notify(const char *state);
void sdn_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "RELOADING=1" with MONOTONIC_USEC, as systemd >= 253 wants it. */
void sdn_reloading(void);
/* Sockets passed by systemd socket activation (LISTEN_FDS, for this
 * process): stores up to max descriptors in fds, marks them close-on-exec,
 * clears the variables, returns how many. */
int sdn_listen_fds(int *fds, int max);
/* Watchdog interval in microseconds when systemd asked for pings, else 0. */
uint64_t sdn_watchdog_usec(void);

#endif
