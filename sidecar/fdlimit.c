/*
 * fdlimit: RLIMIT_NOFILE at start, and the max-connections clamp.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fdlimit.h"
#include "log.h"

unsigned long limits_reserve(const struct config *cfg)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long w = cfg->workers ? cfg->workers : cpus > 0 ? (unsigned long)cpus : 1;
	return 64 + (cfg->nlisten + cfg->nconnect + 4) * w;
}

/* The largest soft limit the kernel allows (the hard limit, or nr_open
 * when that is unlimited). */
static rlim_t ceiling(const struct rlimit *rl)
{
	if (rl->rlim_max != RLIM_INFINITY)
		return rl->rlim_max;
	unsigned long nr = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");
	if (f) {
		if (fscanf(f, "%lu", &nr) != 1)
			nr = 0;
		fclose(f);
	}
	return nr ? (rlim_t)nr : 1048576;
}

unsigned long limits_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("cannot read the open files limit: %s", strerror(errno));
		return 0;
	}
	rlim_t want = ceiling(&rl), was = rl.rlim_cur;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return (unsigned long)rl.rlim_cur;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("cannot raise the open files limit from %llu to %llu: %s", (unsigned long long)was,
			 (unsigned long long)want, strerror(errno));
		return (unsigned long)was;
	}
	log_info("open files limit raised from %llu to %llu (the hard limit)", (unsigned long long)was,
		 (unsigned long long)want);
	return (unsigned long)want;
}

int limits_clamp(struct config *cfg, int hard, struct diag *w)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	rlim_t lim = hard ? ceiling(&rl) : rl.rlim_cur;
	if (lim == RLIM_INFINITY)
		return 0;
	unsigned long reserve = limits_reserve(cfg);
	unsigned long need = cfg->max_connections * 2 + reserve;
	if ((unsigned long long)need <= (unsigned long long)lim)
		return 0;
	unsigned long fit = (unsigned long long)lim > reserve + 2 ? (unsigned long)(((unsigned long long)lim - reserve) / 2) : 1;
	diag_add(w, cfg->file, 0,
		 "max-connections = %lu needs %lu open files, the limit is %llu: clamped to max-connections = %lu "
		 "(raise the hard limit, e.g. LimitNOFILE=, to allow more)",
		 cfg->max_connections, need, (unsigned long long)lim, fit);
	cfg->max_connections = fit;
	return 1;
}
