#!/usr/bin/perl
# The program of server-starter.yaml: an HTTP server written for Server::Starter (libserver-starter-perl), unchanged
# from what it would be under start_server(1). It finds its socket through server_ports(), which reads
# SERVER_STARTER_PORT ("127.0.0.1:8082=3"); baton sets that with program.compat: [server-starter].
use strict;
use warnings;
use IO::Socket::INET;
use Server::Starter qw(server_ports);

my ($addr, $fd) = %{ server_ports() };
my $listen = IO::Socket::INET->new_from_fd($fd, 'r') or die "new_from_fd($fd): $!\n";
my $generation = $ENV{SERVER_STARTER_GENERATION} // '?';

# SIGTERM (start_server's and baton's stop signal) ends the loop once the request in hand is answered. Perl's
# deferred signals interrupt a blocking accept (no SA_RESTART), so an idle server stops at once.
my $stop = 0;
$SIG{TERM} = sub { $stop = 1 };

# server-starter.yaml's readiness.pattern waits for this line.
print STDERR "server-starter-app: generation $generation accepting on $addr (fd $fd)\n";
while (!$stop) {
    my $client = $listen->accept or next;
    while (my $line = <$client>) {
        last if $line =~ /^\r?\n?$/;
    }
    my $body = "hello from perl pid=$$ generation=$generation\n";
    print $client "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($body)
        . "\r\nConnection: close\r\n\r\n$body";
    close $client;
}
print STDERR "server-starter-app: generation $generation stopped\n";
