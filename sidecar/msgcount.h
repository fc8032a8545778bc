/*
 * msgcount: counts SIP messages in a byte stream that is passed through
 * unchanged (the plaintext side's output), for the "closed" log line and
 * metrics. Streaming, no buffering beyond a few bytes of the current line,
 * no judgement: garbage only makes the count approximate.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_MSGCOUNT_H
#define SIDECAR_MSGCOUNT_H

#include <stddef.h>
#include <stdint.h>

struct msgcount {
	uint32_t body_left;  /* bytes of body still to skip */
	uint32_t cl;         /* Content-Length of the current message */
	uint8_t in_hdr;      /* inside a header block */
	uint8_t linelen;     /* bytes of the current line kept in line[] */
	uint8_t linefull;    /* current line is longer than line[] */
	char line[24];
};

/* Feeds len bytes; returns how many messages ended inside them. */
unsigned msgcount_feed(struct msgcount *m, const char *p, size_t len);

#endif
