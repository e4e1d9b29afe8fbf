/* Minimal blocking echo peer for the tcpechod benchmarks: one thread per connection,
 * recv() into a 1 MiB buffer, send() it all back, repeat until EOF.
 *
 *   blocking_echo [PORT]      listens on 127.0.0.1:PORT (0 or absent: a free port) and prints
 *                             "port=N" on stdout once listening. Ends on SIGTERM/SIGINT.
 *
 * The 1 MiB buffer is malloc()ed per connection (glibc serves it with mmap, so an idle
 * connection only pays for the pages it has touched); thread stacks are 128 KiB so that
 * 10,000 idle connections fit in the address space and in pid_max.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (1024 * 1024)
#define STACK_SIZE (128 * 1024)

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(BUF_SIZE);
    if (buf == NULL) goto out;
    for (;;) {
        ssize_t n = recv(fd, buf, BUF_SIZE, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) goto out;
            off += w;
        }
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0) {
        perror("blocking_echo: bind/listen");
        return 1;
    }
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK_SIZE);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) { usleep(10000); continue; }
            perror("blocking_echo: accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) close(fd);
    }
}
