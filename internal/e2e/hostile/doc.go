// Command hostile is the untrusted workload of the end-to-end tests: a
// client that tries to get traffic out of the box past the filter, with
// the privileges a Docker container has by default. The harness builds it
// (e2e.HostileBinary) and runs it in the box (e2e.Env.Hostile).
//
// Usage:
//
//	hostile tcp -addr HOST:PORT [-mark N] [-timeout D]
//	hostile udp -addr HOST:PORT [-mark N] [-timeout D]
//	hostile raw -ifname IF -dstmac MAC -src IP -dst IP -port P [-sport P] [-bypass]
//	hostile reflect -how raw|transparent|loopback -remote IP:PORT -local IP:PORT
//	hostile caps
//	hostile cgroup
//
// Each prints one line to stdout, "ok <detail>" and exit status 0 on
// success, "err <detail>" and 1 on failure; a usage error prints
// "err usage: ..." and exits 2. HOST is an IP literal; -mark, parsed with
// base prefixes (0x6700), sets SO_MARK on the socket before it connects
// when not zero; -timeout, 2s by default, bounds the whole exchange.
//
//   - tcp connects, writes "ping\n", shuts down its sending side and
//     reads up to 128 bytes until EOF or the timeout; the detail is what it
//     read, quoted.
//   - udp sends "ping" and waits for one reply; the detail is the reply,
//     quoted.
//   - raw sends one Ethernet frame through an AF_PACKET socket, out of IF:
//     from IF's MAC to MAC, an IPv4 or IPv6 packet (the family of -dst)
//     holding a UDP datagram from -sport (40000 by default) to -port with
//     the payload "g0e-raw", checksums valid. -bypass sets
//     PACKET_QDISC_BYPASS. The detail is "sent N bytes"; a frame dropped
//     on the way is no error here, only on the far side.
//   - reflect forges a UDP datagram "from" -remote to -local, an address
//     of the box: through a raw socket that writes the IP header
//     (IP_HDRINCL), through a UDP socket with IP_TRANSPARENT bound to
//     -remote, or as a frame written to loopback by a packet socket. Then
//     it sends "g0e-reflected" from -local to -remote, which conntrack
//     would take for the reply had it believed the forgery. The detail
//     says whether the forgery was refused at once (EPERM); what counts is
//     whether the reply arrives on the far side.
//   - caps reports the uid and gid and the effective, bounding and ambient
//     capability sets as /proc/self/status gives them:
//     "ok uid=0 gid=0 CapEff=... CapBnd=... CapAmb=...".
//   - cgroup reports the process's cgroup v2 path from /proc/self/cgroup.
package main
