/*
 * sdnotify: see sdnotify.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "sdnotify.h"

void sdn_notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	int r = sd_notify(0, state);
	if (r < 0)
		log_debug("sd_notify: %s", strerror(-r));
#else
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	size_t pl = strlen(path);
	if (pl >= sizeof sa.sun_path)
		return;
	memcpy(sa.sun_path, path, pl);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl)) < 0)
		log_debug("notify socket: cannot send");
	close(fd);
#endif
}

void sdn_notifyf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sdn_notify(buf);
}

void sdn_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sdn_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
		    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

int sdn_listen_fds(int *fds, int max)
{
	int n = 0;
#ifdef HAVE_SYSTEMD
	n = sd_listen_fds(1);
	if (n < 0) {
		log_warn("socket activation: %s", strerror(-n));
		return 0;
	}
#else
	const char *pid = getenv("LISTEN_PID"), *cnt = getenv("LISTEN_FDS");
	if (pid && cnt && (pid_t)strtol(pid, NULL, 10) == getpid())
		n = (int)strtol(cnt, NULL, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
#endif
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++) {
		fds[i] = 3 + i; /* SD_LISTEN_FDS_START */
		int fl = fcntl(fds[i], F_GETFD);
		if (fl < 0 || fcntl(fds[i], F_SETFD, fl | FD_CLOEXEC) < 0)
			log_warn("socket activation: descriptor %d: %s", fds[i], strerror(errno));
	}
	return n;
}

uint64_t sdn_watchdog_usec(void)
{
#ifdef HAVE_SYSTEMD
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0)
		return usec;
	return 0;
#else
	const char *s = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	if (!s || (pid && (pid_t)strtol(pid, NULL, 10) != getpid()))
		return 0;
	return strtoull(s, NULL, 10);
#endif
}
