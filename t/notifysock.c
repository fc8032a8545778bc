/*
 * notifysock: a stand-in for systemd's notification socket, for the
 * integration tests (t/82-signals-notify.sh).
 *
 *   notifysock SOCKPATH OUTFILE [TIMEOUT_S]
 *
 * Binds a unix datagram socket at SOCKPATH (removing a stale one first) and
 * appends every datagram it receives to OUTFILE as one line, the datagram's
 * own newlines written as " | " (so "READY=1\nSTATUS=x" becomes
 * "READY=1 | STATUS=x"); NUL bytes become "\0". The file is flushed after
 * every line. Point the daemon at it with NOTIFY_SOCKET=SOCKPATH; the socket
 * file exists once it is ready to receive. Exits 0 on SIGTERM/SIGINT or after
 * TIMEOUT_S seconds (default 60) without any datagram; 2 on usage errors,
 * 1 on other errors. SOCKPATH is unlinked at exit.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: notifysock SOCKPATH OUTFILE [TIMEOUT_S]\n");
		return 2;
	}
	const char *path = argv[1];
	long timeout = argc == 4 ? strtol(argv[3], NULL, 10) : 60;
	if (timeout <= 0)
		timeout = 60;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "notifysock: path too long: %s\n", path);
		return 2;
	}
	strcpy(sa.sun_path, path);

	FILE *out = fopen(argv[2], "a");
	if (!out) {
		fprintf(stderr, "notifysock: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	struct sigaction act;
	memset(&act, 0, sizeof act);
	act.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "notifysock: socket: %s\n", strerror(errno));
		return 1;
	}
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "notifysock: bind %s: %s\n", path, strerror(errno));
		return 1;
	}

	static char buf[65536];
	int rc = 0;
	while (!stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(timeout * 1000));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "notifysock: poll: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		if (r == 0)
			break; /* quiet for TIMEOUT_S */
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "notifysock: recv: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		while (n > 0 && buf[n - 1] == '\n')
			n--;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n')
				fputs(" | ", out);
			else if (buf[i] == '\0')
				fputs("\\0", out);
			else
				fputc(buf[i], out);
		}
		fputc('\n', out);
		if (fflush(out) != 0) {
			rc = 1;
			break;
		}
	}
	(void)unlink(path);
	close(fd);
	if (fclose(out) != 0)
		rc = 1;
	return rc;
}
