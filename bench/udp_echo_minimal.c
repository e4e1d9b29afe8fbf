/* udp_echo_minimal: the minimal UDP echo server of bench/udp_run.sh, the yardstick tcpechod's
 * UDP listener is compared with. One thread, one socket, blocking recvfrom() and sendto(),
 * one datagram per call, default socket buffers. Nothing else.
 *
 *   udp_echo_minimal [ADDRESS] PORT      (default address 127.0.0.1; PORT 0: the kernel picks)
 *
 * Prints "udp_echo_minimal listening address=ADDRESS:PORT" on stdout once bound. Runs until
 * killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    const char *addr = argc > 2 ? argv[1] : "127.0.0.1";
    const char *port = argc > 2 ? argv[2] : argc > 1 ? argv[1] : NULL;
    if (port == NULL || argc > 3) {
        fprintf(stderr, "usage: udp_echo_minimal [ADDRESS] PORT\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "udp_echo_minimal: bad IPv4 address %s\n", addr);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("udp_echo_minimal: socket/bind");
        return 1;
    }
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    printf("udp_echo_minimal listening address=%s:%d\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    static char buf[65536];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("udp_echo_minimal: recvfrom");
            return 1;
        }
        /* A failed send (e.g. ECONNREFUSED left by an earlier ICMP error, ENOBUFS) drops this
         * one datagram, as UDP may; the loop goes on. */
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
    }
}
