#!/usr/bin/env python3
# Writes the known SIP parser attack shapes into the seed corpus of the SIP
# framer and topology fuzz targets, t/data/fuzz-sipframe/ (already in the
# repository: run again only to change them). Format: one configuration
# byte (t/fuzz-sipframe.c: 0x02 = max 4096 bytes, no identity header;
# 0x06 = the same with X-TLS-Peer-Identity stripped), then the stream.
# SPDX-License-Identifier: MIT
import os

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz-sipframe")
HEAD = ("Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK-1\r\n"
        "From: <sip:a@example.test>;tag=f\r\n"
        "Call-ID: c1@example.test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n")


def msg(start, headers, body=""):
    return start + "\r\n" + headers + "\r\n" + body


def seed(name, data, cfg=0x02):
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([cfg]) + data)


# Kamailio CVE-2018-14767: a second To header, and To headers carrying
# several tags (the reply builder copied the wrong one).
seed("cve-2018-14767-to-tags",
     msg("INVITE sip:b@example.test SIP/2.0",
         HEAD + "To: <sip:b@example.test>;tag=a;tag=b\r\n"
         "To: <sip:b@example.test>;tag=c\r\nContent-Length: 0\r\n") +
     msg("OPTIONS sip:b@example.test SIP/2.0",
         HEAD + "t: <sip:b@example.test>;tag=\r\nTo: b;tag=x;tag\r\nl: 0\r\n"), cfg=0x06)
# Kamailio CVE-2018-16657: malformed Via headers whose length the reply
# builder got wrong ("Via/" name, empty and truncated values, a value made
# only of separators, a header line ending inside the Via).
seed("cve-2018-16657-via",
     msg("INVITE sip:b@example.test SIP/2.0",
         "Via/: SIP/2.0/UDP 192.0.2.1\r\nVia:\r\nVia: SIP/2.0/\r\nVia: ,,,,\r\n"
         "v: SIP/2.0/TLS [::1\r\n" + HEAD + "To: <sip:b@example.test>\r\nContent-Length: 0\r\n") +
     msg("BYE sip:b@example.test SIP/2.0",
         "Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK-2;received=\r\n"
         "Via: SIP/2.0/TLS " + "a" * 3000 + "\r\nl: 0\r\n"))
# Asterisk AST-2016-009: control characters in header names.
seed("ast-2016-009-ctl-header-names",
     msg("OPTIONS sip:b@example.test SIP/2.0",
         HEAD + "X-\x01Ctl: 1\r\nTo\x1b: <sip:b@example.test>\r\n\x7fDel: x\r\nContent-Length: 0\r\n"))
seed("ast-2016-009-ctl-in-values",
     msg("OPTIONS sip:b@example.test SIP/2.0",
         HEAD + "To: <sip:b@example.test>\r\nSubject: a\x01b\x1b[31mc\x7f\r\nContent-Length: 0\r\n"))
# haproxy CVE-2023-25725: empty header names (": value").
seed("haproxy-cve-2023-25725-empty-name",
     msg("INVITE sip:b@example.test SIP/2.0",
         HEAD + "To: <sip:b@example.test>\r\n: Content-Length: 10\r\n:\r\n \t: x\r\nContent-Length: 0\r\n"))
# Content-Length above 2^32 (and 2^64): must not wrap to a small length.
seed("content-length-2-32",
     msg("MESSAGE sip:b@example.test SIP/2.0",
         HEAD + "To: <sip:b@example.test>\r\nContent-Length: 4294967296\r\n") +
     msg("MESSAGE sip:b@example.test SIP/2.0",
         HEAD + "To: <sip:b@example.test>\r\nl: 4294967301\r\n", "hello"))
seed("content-length-2-64",
     msg("MESSAGE sip:b@example.test SIP/2.0",
         HEAD + "To: <sip:b@example.test>\r\nContent-Length: 18446744073709551617\r\n", "x"))
seed("content-length-negative",
     msg("MESSAGE sip:b@example.test SIP/2.0",
         HEAD + "To: <sip:b@example.test>\r\nContent-Length: -1\r\n", "x"))
