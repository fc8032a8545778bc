#!/usr/bin/perl
# dns.pl ADDR:PORT NAME=IPV4...: a minimal authoritative DNS responder over
# UDP for t/72-calls-baresip-kamailio.sh. baresip 1.0 (libre 1.1) resolves
# SIP host names with its own DNS client only (no /etc/hosts), and the UAs
# run in network namespaces with nothing but loopback: this answers A
# queries for the NAMEs given, NODATA for their other types (AAAA, SRV,
# NAPTR) and NXDOMAIN for every other name. Each query is logged to stdout
# as "query NAME TYPE -> RCODE/ANSWERS". Only Perl's core modules.
#
# SPDX-License-Identifier: MIT
use strict;
use warnings;
use IO::Socket::INET;

$| = 1;
my $listen = shift @ARGV or die "usage: $0 ADDR:PORT NAME=IPV4...\n";
my %a;
for (@ARGV) {
	my ($n, $ip) = /^([^=]+)=(\d+\.\d+\.\d+\.\d+)$/ or die "bad NAME=IPV4: $_\n";
	$a{lc $n} = pack 'C4', split /\./, $ip;
}
my $sock = IO::Socket::INET->new(LocalAddr => $listen, Proto => 'udp', ReuseAddr => 1)
	or die "dns.pl: cannot bind $listen: $!\n";
print "listening on $listen\n";

my %tname = (1 => 'A', 28 => 'AAAA', 33 => 'SRV', 35 => 'NAPTR', 5 => 'CNAME');
while (1) {
	my $peer = $sock->recv(my $q, 512);
	next unless defined $peer && length($q) >= 17;
	my ($id, $flags, $qd) = unpack 'n n n', $q;
	next if $flags & 0x8000 || $qd != 1;    # responses, multi-question
	# the question: labels, type, class
	my ($off, @labels) = (12);
	while ($off < length $q) {
		my $len = ord substr $q, $off, 1;
		$off++;
		last if $len == 0;
		if ($len > 63 || $off + $len > length $q) { $off = -1; last }
		push @labels, substr $q, $off, $len;
		$off += $len;
	}
	next if $off < 0 || $off + 4 > length $q;
	my ($type, $class) = unpack 'n n', substr $q, $off, 4;
	my $question = substr $q, 12, $off + 4 - 12;
	my $name = lc join '.', @labels;
	my ($rcode, @ans) = (0);
	if (!exists $a{$name}) {
		$rcode = 3;
	} elsif ($type == 1 && $class == 1) {
		# pointer to the name in the question, A, IN, TTL 60, 4 bytes
		push @ans, pack('n n n N n', 0xc00c, 1, 1, 60, 4) . $a{$name};
	}
	# QR, opcode 0, AA, RD copied, RA
	my $rflags = 0x8000 | 0x0400 | ($flags & 0x0100) | 0x0080 | $rcode;
	my $resp = pack('n n n n n n', $id, $rflags, 1, scalar @ans, 0, 0) . $question . join '', @ans;
	$sock->send($resp, 0, $peer);
	printf "query %s %s -> %s/%d\n", $name, $tname{$type} // $type, $rcode ? 'NXDOMAIN' : 'NOERROR',
		scalar @ans;
}
