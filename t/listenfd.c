/*
 * listenfd: stands in for systemd socket activation in tests. Opens a
 * listening TCP socket on each ADDR:PORT (loopback), places them at
 * descriptors 3, 4, ..., sets LISTEN_FDS and LISTEN_PID, and execs CMD.
 *
 *   listenfd ADDR:PORT [ADDR:PORT ...] -- CMD [ARG ...]
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Opens a listening socket on "IPv4:PORT" or "[IPv6]:PORT"; -1 on error. */
static int open_listener(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char host[64];
	const char *colon = strrchr(spec, ':');
	memset(&ss, 0, sizeof ss);
	if (!colon || (size_t)(colon - spec) >= sizeof host)
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	int port = atoi(colon + 1);
	if (host[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		len = sizeof *s4;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	/* no SO_REUSEADDR: a second bind by the daemon would fail visibly */
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
		perror(spec);
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	int n = 0, i;
	int fds[16];
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (n == 16 || (fds[n] = open_listener(argv[i])) < 0) {
			fprintf(stderr, "listenfd: cannot listen on %s\n", argv[i]);
			return 2;
		}
		n++;
	}
	if (i >= argc - 1) {
		fprintf(stderr, "usage: listenfd ADDR:PORT ... -- CMD [ARG ...]\n");
		return 2;
	}
	/* move them to 3.. without clobbering one another: first out of the way */
	for (int k = 0; k < n; k++) {
		int high = fcntl(fds[k], F_DUPFD, 100);
		if (high < 0 || close(fds[k]) < 0)
			return 2;
		fds[k] = high;
	}
	for (int k = 0; k < n; k++) {
		if (dup2(fds[k], 3 + k) < 0 || close(fds[k]) < 0)
			return 2;
	}
	char num[16], pid[32];
	snprintf(num, sizeof num, "%d", n);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	if (setenv("LISTEN_FDS", num, 1) < 0 || setenv("LISTEN_PID", pid, 1) < 0)
		return 2;
	execvp(argv[i + 1], argv + i + 1);
	perror(argv[i + 1]);
	return 127;
}
