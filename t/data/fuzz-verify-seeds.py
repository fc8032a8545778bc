#!/usr/bin/env python3
# Writes the seed corpus of t/fuzz-verify into t/data/fuzz-verify/ (already
# in the repository: run again only to change it). Each seed is a mode byte,
# NUL-terminated peer patterns and a self-signed DER certificate with the
# names to test (python3-cryptography). Certificates valid 2020-2045.
# SPDX-License-Identifier: MIT
import datetime, ipaddress, os, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz-verify")
os.makedirs(out, exist_ok=True)
key = ec.derive_private_key(0x5eed, ec.SECP256R1())


def cert(cns, sans, eku=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH)):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in cns])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(0x1234)
         .not_valid_before(datetime.datetime(2020, 1, 1))
         .not_valid_after(datetime.datetime(2045, 1, 1))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def seed(name, mode, patterns, der):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([mode | len(patterns)]) + b"".join(p + b"\0" for p in patterns) + der)


D, U = x509.DNSName, x509.UniformResourceIdentifier
seed("uri-dns-cn", 0, [b"peer.example.test"],
     cert(["peer.example.test"], [U("sip:peer.example.test"), D("peer.example.test")]))
seed("any-peer", 0, [], cert(["peer.example.test"], [U("sip:peer.example.test")]))
seed("server-purpose", 4, [b"sip.example.test"],
     cert(["sip.example.test"], [D("sip.example.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
seed("sips-uri", 0, [b"peer.example.test", b"*.example.test"],
     cert(["x"], [U("sips:peer.example.test"), U("SIPS:UPPER.example.test")]))
seed("uri-user-part", 0, [b"user.example.test"],
     cert(["user.example.test"], [U("sip:alice@user.example.test"), U("sip:host.example.test;transport=tls")]))
seed("cn-only", 0, [b"cn.example.test"], cert(["cn.example.test"], None))
seed("two-cns", 0, [b"a.example.test"], cert(["a.example.test", "b.example.test"], None))
seed("wildcard-san", 0, [b"*.example.test", b"x.example.test"], cert(["w"], [D("*.example.test")]))
seed("wildcard-pattern", 0, [b"*.example.test"],
     cert(["w"], [D("a.example.test"), D("a.b.example.test"), D(".example.test")]))
seed("upper-case", 0, [b"peer.example.test"], cert(["P"], [D("PEER.Example.TEST")]))
seed("nul-in-san", 0, [b"good.example.test"],
     cert(["good.example.test"], [D("good.example.test\0.evil.test"), U("sip:good.example.test\0.evil.test")]))
seed("nul-in-san-only", 0, [b"cn.other.test"],
     cert(["cn.other.test"], [D("good.example.test\0.evil.test")]))
seed("other-sans", 0, [b"a@example.test"],
     cert(["cn.example.test"], [x509.RFC822Name("a@example.test"),
                                x509.IPAddress(ipaddress.ip_address("::1")),
                                x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4"))]))
seed("long-san", 0, [b"x"], cert(["c"], [D("a" * 300 + ".example.test"), D("b" * 250 + ".test")]))
seed("many-sans", 1, [b"n199.example.test"],
     cert(["c"], [D("n%d.example.test" % i) for i in range(200)]))
seed("no-eku", 4, [], cert(["c.example.test"], [D("c.example.test")], eku=None))
seed("client-only-eku", 4, [b"c.example.test"],
     cert(["c.example.test"], [D("c.example.test")], eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)))
seed("control-chars", 0, [b"a\x1bb.example.test"], cert(["a\x1bb"], [D("a\x1bb.example.test"), D("tab\t.test")]))
seed("empty", 0, [], b"")
for name, pat, ident in [("match-exact", b"Peer.Example.test", b"peer.example.test"),
                         ("match-wild", b"*.example.test", b"a.example.test"),
                         ("match-wild-deep", b"*.example.test", b"a.b.example.test"),
                         ("match-wild-empty", b"*.example.test", b".example.test"),
                         ("match-star-id", b"*.example.test", b"*.example.test"),
                         ("match-star-only", b"*.", b"a."),
                         ("match-empty", b"", b"")]:
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"\x80" + pat + b"\0" + ident)
