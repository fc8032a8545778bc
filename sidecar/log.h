/*
 * log: one event per line on stderr, with a "<N>" syslog priority prefix
 * when stderr is the journal (JOURNAL_STREAM matches stderr).
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_LOG_H
#define SIDECAR_LOG_H

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Set up the prefix style and the threshold; call once at start and on reload. */
void log_init(void);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);

/* The journal fields of a message in the log words' format (exposed for
 * the unit test): "SIP_SIDECAR_SECTION=pub", ..._PEER, ..._IDENTITY,
 * ..._REASON, each at most 255 bytes. Returns how many were found. */
size_t log_fields(const char *msg, char out[][256], size_t max);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_get_level() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
