/* Minimal edge-triggered epoll echo peer for the tcpechod benchmarks. One thread.
 *
 *   epoll_echo [PORT]         listens on 127.0.0.1:PORT (0 or absent: a free port) and prints
 *                             "port=N" on stdout once listening. Ends on SIGTERM/SIGINT.
 *
 * Rules, the same the daemon follows (docs/architecture.md, "A connection"):
 * - connections are registered once with EPOLLIN|EPOLLRDHUP|EPOLLET;
 * - read until EAGAIN or a short read (a short read proves the socket drained unless
 *   EPOLLRDHUP was seen);
 * - send at once; only when send() cannot take everything, keep the rest in a per-connection
 *   heap buffer, stop reading, and add EPOLLOUT (epoll_ctl MOD) until it drains.
 * Nothing is allocated per idle connection: per-fd state is a static table.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (1024 * 1024)
#define MAX_FDS 65536
#define MAX_EVENTS 256

struct pending {           /* bytes send() would not take */
    size_t off, len;
    char data[];
};

static struct pending *pend[MAX_FDS];
static unsigned char rdhup[MAX_FDS];
static char buf[BUF_SIZE];
static int ep;

static void drop(int fd) {
    free(pend[fd]);
    pend[fd] = NULL;
    rdhup[fd] = 0;
    close(fd); /* closing removes it from the epoll set */
}

static void set_events(int fd, uint32_t ev) {
    struct epoll_event e = {.events = ev | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

/* Returns 0 when everything was sent, 1 when the rest was queued, -1 on error. */
static int send_or_queue(int fd, const char *p, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, p + off, n - off, MSG_NOSIGNAL);
        if (w > 0) { off += (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        return -1;
    }
    if (off == n) return 0;
    struct pending *q = malloc(sizeof *q + (n - off));
    if (q == NULL) return -1;
    q->off = 0;
    q->len = n - off;
    memcpy(q->data, p + off, n - off);
    pend[fd] = q;
    set_events(fd, EPOLLIN | EPOLLOUT);
    return 1;
}

static void on_readable(int fd) {
    for (;;) {
        ssize_t n = recv(fd, buf, BUF_SIZE, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            drop(fd);
            return;
        }
        if (n == 0) { drop(fd); return; }
        int r = send_or_queue(fd, buf, (size_t)n);
        if (r < 0) { drop(fd); return; }
        if (r > 0) return; /* backpressure: resume when the queue drains */
        if ((size_t)n < BUF_SIZE && !rdhup[fd]) return; /* short read: drained */
    }
}

static void on_writable(int fd) {
    struct pending *q = pend[fd];
    if (q == NULL) return;
    while (q->off < q->len) {
        ssize_t w = send(fd, q->data + q->off, q->len - q->off, MSG_NOSIGNAL);
        if (w > 0) { q->off += (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return;
        drop(fd);
        return;
    }
    free(q);
    pend[fd] = NULL;
    set_events(fd, EPOLLIN);
    on_readable(fd); /* the EPOLLIN edge may have passed while we were not reading */
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0) {
        perror("epoll_echo: bind/listen");
        return 1;
    }
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            uint32_t ev = events[i].events;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    if (c >= MAX_FDS) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            if (ev & EPOLLRDHUP) rdhup[fd] = 1;
            if (ev & (EPOLLERR | EPOLLHUP)) {
                if (pend[fd] == NULL && !(ev & EPOLLIN)) { drop(fd); continue; }
            }
            if (pend[fd] != NULL) {
                if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(fd);
                continue;
            }
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(fd);
        }
    }
}
