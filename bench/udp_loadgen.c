/* udp_loadgen: the load client of bench/udp_run.sh. Drives a UDP echo server on loopback with
 * F flows, each its own connected UDP socket (so its own source port), each keeping W
 * datagrams in flight (closed loop: every echo sends the next datagram of its slot).
 *
 *   udp_loadgen -P PORT [-a ADDR] [-f FLOWS] [-W WINDOW] [-t THREADS] [-s SIZE] [-w WARMUP]
 *               [-d SECS] [-r REARM_MS] [-p PID] [-T SECS] [--perf-ctl FIFO --perf-ack FIFO]
 *
 * Defaults: 127.0.0.1, 1 flow, window 1, 1 thread, 64-byte datagrams, 1 s warm-up, 5 s
 * measured, a slot re-armed after 100 ms without its echo, -T 120 s.
 *
 * Flows are split into contiguous slices over the threads. A thread with one flow blocks in
 * recvmmsg(MSG_WAITFORONE) (SO_RCVTIMEO bounds the wait); a thread with several waits in one
 * level-triggered epoll set (no epoll_ctl after setup). Either way a wake-up takes all echoes
 * queued on a flow's socket with one recvmmsg and sends their successors with one sendmmsg.
 *
 * Each in-flight datagram is a slot of its flow; the first 8 bytes carry the flow number, the
 * slot and the slot's generation. An echo must have exactly SIZE bytes and name this flow
 * (else it counts as bad, and the exit status is 1); an echo of an older generation is late
 * and ignored. A slot whose echo has not come back within REARM_MS is counted as lost, its
 * generation advances and it is sent again, so a lost datagram (or a failed send) costs that
 * slot REARM_MS but never wedges the flow.
 *
 * Warm-up WARMUP s, then "ready" on stdout (with --perf-ctl it also prints "connected" and
 * enables the counters of a `perf stat -D -1 --control fifo:CTL,ACK` for exactly its window),
 * then SECS s measured. The server's CPU comes from utime/stime of /proc/PID/stat (all its
 * threads) read at the window's edges. One line "result mode=udp key=value ..." on stdout:
 * dgrams_s (echoed datagrams per second), lost/late/bad counts, round-trip p50/p99 (µs, per
 * wake-up timestamps), server CPU µs per datagram (user, sys, total), the client's own CPU
 * and syscalls per datagram with its recvmmsg/sendmmsg batch sizes, and other_cpu_s: what the
 * rest of the machine used meanwhile. Exit 0 on success, 1 on a failed check (bad echo, no
 * echo at all in the window, time limit), 2 on usage errors. Every loop is bounded: -T is an
 * alarm() that ends the process.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_WINDOW 64
#define MAX_SIZE 65507
#define HEADER 8 /* u32 flow, u16 slot, u16 generation */

static const char *g_addr = "127.0.0.1";
static int g_port, g_flows = 1, g_window = 1, g_threads = 1, g_size = 64, g_pid, g_timeout = 120;
static double g_warmup = 1.0, g_duration = 5.0, g_rearm_ms = 100.0;
static const char *g_perf_ctl, *g_perf_ack;
static int g_ctl_fd = -1, g_ack_fd = -1;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("udp_loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "udp_loadgen: time limit (-T) reached, giving up\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_s(double s) {
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- /proc ------------------------------------------------------------------------------ */

/* utime and stime (seconds) of one process, all its threads included; -1 if gone. */
static int server_cpu(int pid, double *user, double *sys) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')'); /* comm may contain spaces */
    unsigned long long ut, st;
    /* after comm: 3 state 4 ppid 5 pgrp 6 session 7 tty 8 tpgid 9 flags 10-13 faults 14 utime 15 stime */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    double tck = (double)sysconf(_SC_CLK_TCK);
    *user = (double)ut / tck;
    *sys = (double)st / tck;
    return 0;
}

static double client_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Non-idle CPU seconds of the whole machine since boot (user nice system irq softirq steal). */
static double machine_busy_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) return 0;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (n < 8) return 0;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- perf stat control (as in loadgen.c) ---------------------------------------------- */

static void perf_command(const char *cmd) {
    if (g_ctl_fd < 0) return;
    if (write(g_ctl_fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) die("writing %s: %s", g_perf_ctl, strerror(errno));
    char ack[16];
    ssize_t n;
    while ((n = read(g_ack_fd, ack, sizeof ack)) < 0 && errno == EINTR) {
    }
    if (n <= 0) die("no ack from perf on %s", g_perf_ack);
}

static void perf_attach(void) {
    if (g_perf_ctl == NULL) return;
    printf("connected\n");
    fflush(stdout);
    g_ctl_fd = open(g_perf_ctl, O_WRONLY | O_CLOEXEC); /* both block until perf opens its ends; -T bounds it */
    if (g_ctl_fd < 0) die("open %s: %s", g_perf_ctl, strerror(errno));
    g_ack_fd = open(g_perf_ack, O_RDONLY | O_CLOEXEC);
    if (g_ack_fd < 0) die("open %s: %s", g_perf_ack, strerror(errno));
}

/* ---- flows ------------------------------------------------------------------------------ */

enum { PH_WARMUP = 0, PH_MEASURE = 1, PH_STOP = 2 };
static atomic_int g_phase;

/* Round-trip histogram: 1 µs buckets up to 100 ms, then one overflow bucket. */
#define HIST_BUCKETS 100000

struct flow {
    int fd;
    uint32_t id;
    uint16_t gen[MAX_WINDOW];
    uint64_t sent_ns[MAX_WINDOW];
    unsigned char *out; /* MAX_WINDOW datagrams of g_size bytes, one per slot */
};

/* Counters a thread keeps in plain locals and publishes with relaxed stores after each
 * wake-up; the main thread reads them at the window's edges. */
enum { C_DGRAMS, C_LOST, C_LATE, C_BAD, C_SEND_ERR, C_RECV_ERR, C_RECV_CALLS, C_SEND_CALLS, C_WAIT_CALLS, C_SENT, C_N };

struct worker {
    pthread_t th;
    struct flow *flows;
    int nflows;
    unsigned long long local[C_N];
    atomic_ullong pub[C_N];
    uint32_t *hist;
    int error;
};

static void publish(struct worker *w) {
    for (int i = 0; i < C_N; ++i) atomic_store_explicit(&w->pub[i], w->local[i], memory_order_relaxed);
}

static void stamp(struct flow *f, int slot) {
    unsigned char *p = f->out + (size_t)slot * (size_t)g_size;
    uint16_t s = (uint16_t)slot, g = f->gen[slot];
    memcpy(p, &f->id, 4);
    memcpy(p + 4, &s, 2);
    memcpy(p + 6, &g, 2);
}

/* Sends the given slots of a flow in one sendmmsg. A datagram that could not be sent stays
 * in flight on paper and is re-armed after REARM_MS, like a lost one. */
static void send_slots(struct worker *w, struct flow *f, const int *slots, int n, uint64_t t) {
    struct mmsghdr mm[MAX_WINDOW];
    struct iovec iov[MAX_WINDOW];
    for (int i = 0; i < n; ++i) {
        stamp(f, slots[i]);
        f->sent_ns[slots[i]] = t;
        iov[i].iov_base = f->out + (size_t)slots[i] * (size_t)g_size;
        iov[i].iov_len = (size_t)g_size;
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int done = 0;
    while (done < n) {
        int r = n - done == 1 ? (send(f->fd, iov[done].iov_base, iov[done].iov_len, MSG_DONTWAIT) == g_size ? 1 : -1)
                              : sendmmsg(f->fd, mm + done, (unsigned)(n - done), MSG_DONTWAIT);
        w->local[C_SEND_CALLS]++;
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            w->local[C_SEND_ERR] += (unsigned long long)(n - done); /* EAGAIN, ENOBUFS, ECONNREFUSED */
            break;
        }
        done += r;
        w->local[C_SENT] += (unsigned long long)r;
    }
}

/* Takes every echo queued on the flow's socket (up to one window) in one recvmmsg and sends
 * their successors in one sendmmsg. Returns the number received, -1 on EAGAIN/timeout. */
static int pump(struct worker *w, struct flow *f, int flags, unsigned char *bufs) {
    struct mmsghdr mm[MAX_WINDOW];
    struct iovec iov[MAX_WINDOW];
    const size_t cap = (size_t)g_size + 1; /* one byte more: a longer echo shows as such */
    for (int i = 0; i < g_window; ++i) {
        iov[i].iov_base = bufs + (size_t)i * cap;
        iov[i].iov_len = cap;
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(f->fd, mm, (unsigned)g_window, flags, NULL);
    w->local[C_RECV_CALLS]++;
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) w->local[C_RECV_ERR]++; /* ECONNREFUSED */
        return -1;
    }
    uint64_t t = now_ns();
    int measuring = atomic_load_explicit(&g_phase, memory_order_relaxed) == PH_MEASURE;
    int resend[MAX_WINDOW], k = 0;
    for (int i = 0; i < n; ++i) {
        const unsigned char *p = iov[i].iov_base;
        uint32_t id;
        uint16_t slot, gen;
        memcpy(&id, p, 4);
        memcpy(&slot, p + 4, 2);
        memcpy(&gen, p + 6, 2);
        if (mm[i].msg_len != (unsigned)g_size || (mm[i].msg_hdr.msg_flags & MSG_TRUNC) || id != f->id ||
            slot >= g_window) {
            if (w->local[C_BAD]++ < 5)
                fprintf(stderr, "udp_loadgen: flow %u: bad echo: %u bytes (want %d), flow %u, slot %u\n", f->id,
                        mm[i].msg_len, g_size, id, slot);
            continue;
        }
        if (gen != f->gen[slot]) { /* its slot was re-armed meanwhile */
            w->local[C_LATE]++;
            continue;
        }
        w->local[C_DGRAMS]++;
        if (measuring) {
            uint64_t us = (t - f->sent_ns[slot]) / 1000;
            w->hist[us < HIST_BUCKETS ? us : HIST_BUCKETS]++;
        }
        f->gen[slot]++;
        resend[k++] = slot;
    }
    if (k > 0 && atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_STOP) send_slots(w, f, resend, k, t);
    return n;
}

/* Re-arms every slot of the thread's flows whose echo is overdue. */
static void rearm_overdue(struct worker *w, uint64_t t) {
    uint64_t limit = (uint64_t)(g_rearm_ms * 1e6);
    for (int i = 0; i < w->nflows; ++i) {
        struct flow *f = &w->flows[i];
        int slots[MAX_WINDOW], k = 0;
        for (int s = 0; s < g_window; ++s) {
            if (t - f->sent_ns[s] > limit) {
                f->gen[s]++;
                slots[k++] = s;
            }
        }
        if (k > 0) {
            w->local[C_LOST] += (unsigned long long)k;
            send_slots(w, f, slots, k, t);
        }
    }
}

static void *run_worker(void *arg) {
    struct worker *w = arg;
    unsigned char *bufs = malloc((size_t)MAX_WINDOW * (size_t)(g_size + 1));
    if (bufs == NULL) die("out of memory");
    const uint64_t scan_every = (uint64_t)(g_rearm_ms * 1e6 / 4);
    uint64_t t = now_ns(), last_scan = t;
    int all[MAX_WINDOW];
    for (int s = 0; s < g_window; ++s) all[s] = s;
    for (int i = 0; i < w->nflows; ++i) send_slots(w, &w->flows[i], all, g_window, t);
    publish(w);

    if (w->nflows == 1) {
        /* One flow: block in recvmmsg; SO_RCVTIMEO wakes us for re-arming and stopping. */
        struct flow *f = &w->flows[0];
        double wait_ms = g_rearm_ms / 4 < 50 ? g_rearm_ms / 4 : 50;
        struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(wait_ms * 1000) + 1};
        setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_STOP) {
            int n = pump(w, f, MSG_WAITFORONE, bufs);
            if (n < 0 || (w->local[C_RECV_CALLS] & 63) == 0) {
                t = now_ns();
                if (t - last_scan > scan_every) {
                    rearm_overdue(w, t);
                    last_scan = t;
                }
            }
            publish(w);
        }
    } else {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) die("epoll_create1: %s", strerror(errno));
        for (int i = 0; i < w->nflows; ++i) {
            struct epoll_event e = {.events = EPOLLIN, .data.ptr = &w->flows[i]};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, w->flows[i].fd, &e) != 0) die("epoll_ctl: %s", strerror(errno));
        }
        struct epoll_event events[256];
        while (atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_STOP) {
            int n = epoll_wait(ep, events, 256, 10);
            w->local[C_WAIT_CALLS]++;
            if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
            for (int i = 0; i < n; ++i) pump(w, events[i].data.ptr, MSG_DONTWAIT, bufs);
            t = now_ns();
            if (t - last_scan > scan_every) {
                rearm_overdue(w, t);
                last_scan = t;
            }
            publish(w);
        }
        close(ep);
    }
    publish(w);
    free(bufs);
    return NULL;
}

static void totals(struct worker *ws, int nw, unsigned long long out[C_N]) {
    memset(out, 0, sizeof(unsigned long long) * C_N);
    for (int t = 0; t < nw; ++t)
        for (int i = 0; i < C_N; ++i) out[i] += atomic_load_explicit(&ws[t].pub[i], memory_order_relaxed);
}

static double percentile_us(const uint32_t *hist, unsigned long long total, double q) {
    if (total == 0) return 0;
    unsigned long long want = (unsigned long long)(q * (double)total), seen = 0;
    if (want >= total) want = total - 1;
    for (int b = 0; b <= HIST_BUCKETS; ++b) {
        seen += hist[b];
        if (seen > want) return (double)b + 0.5;
    }
    return HIST_BUCKETS;
}

static void usage(void) {
    fprintf(stderr, "usage: udp_loadgen -P PORT [-a ADDR] [-f FLOWS] [-W WINDOW] [-t THREADS] [-s SIZE] [-w WARMUP]\n"
                    "                   [-d SECS] [-r REARM_MS] [-p PID] [-T SECS] [--perf-ctl FIFO --perf-ack FIFO]\n");
    exit(2);
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"perf-ctl", required_argument, NULL, 'C'}, {"perf-ack", required_argument, NULL, 'A'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "a:P:f:W:t:s:w:d:r:p:T:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': g_addr = optarg; break;
        case 'P': g_port = atoi(optarg); break;
        case 'f': g_flows = atoi(optarg); break;
        case 'W': g_window = atoi(optarg); break;
        case 't': g_threads = atoi(optarg); break;
        case 's': g_size = atoi(optarg); break;
        case 'w': g_warmup = atof(optarg); break;
        case 'd': g_duration = atof(optarg); break;
        case 'r': g_rearm_ms = atof(optarg); break;
        case 'p': g_pid = atoi(optarg); break;
        case 'T': g_timeout = atoi(optarg); break;
        case 'C': g_perf_ctl = optarg; break;
        case 'A': g_perf_ack = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || g_port <= 0 || g_port > 65535 || g_flows < 1 || g_flows > 60000 || g_window < 1 ||
        g_window > MAX_WINDOW || g_threads < 1 || g_size < HEADER || g_size > MAX_SIZE || g_warmup < 0 ||
        g_duration <= 0 || g_rearm_ms < 1 || g_timeout < 1)
        usage();
    if (g_threads > g_flows) g_threads = g_flows;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)g_timeout);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    if (inet_pton(AF_INET, g_addr, &sa.sin_addr) != 1) die("bad IPv4 address %s", g_addr);
    struct flow *flows = calloc((size_t)g_flows, sizeof *flows);
    struct worker *ws = calloc((size_t)g_threads, sizeof *ws);
    if (flows == NULL || ws == NULL) die("out of memory");
    for (int i = 0; i < g_flows; ++i) {
        struct flow *f = &flows[i];
        f->id = (uint32_t)i;
        f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (f->fd < 0) die("socket: %s", strerror(errno));
        if (connect(f->fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect: %s", strerror(errno));
        f->out = malloc((size_t)g_window * (size_t)g_size);
        if (f->out == NULL) die("out of memory");
        memset(f->out, 'x', (size_t)g_window * (size_t)g_size);
    }
    for (int t = 0, start = 0; t < g_threads; ++t) {
        int cnt = g_flows / g_threads + (t < g_flows % g_threads ? 1 : 0);
        ws[t].flows = flows + start;
        ws[t].nflows = cnt;
        ws[t].hist = calloc(HIST_BUCKETS + 1, sizeof(uint32_t));
        if (ws[t].hist == NULL) die("out of memory");
        start += cnt;
    }
    atomic_store(&g_phase, PH_WARMUP);
    for (int t = 0; t < g_threads; ++t) pthread_create(&ws[t].th, NULL, run_worker, &ws[t]);

    sleep_s(g_warmup);
    perf_attach();
    perf_command("enable\n");
    double su0 = 0, ss0 = 0, su1 = 0, ss1 = 0;
    if (g_pid && server_cpu(g_pid, &su0, &ss0) != 0) die("cannot read /proc/%d/stat", g_pid);
    double ccpu0 = client_cpu_s(), busy0 = machine_busy_s();
    unsigned long long c0[C_N], c1[C_N];
    totals(ws, g_threads, c0);
    uint64_t t0 = now_ns();
    atomic_store(&g_phase, PH_MEASURE);
    printf("ready\n");
    fflush(stdout);
    sleep_s(g_duration);
    totals(ws, g_threads, c1);
    uint64_t t1 = now_ns();
    perf_command("disable\n");
    atomic_store(&g_phase, PH_STOP);
    if (g_pid && server_cpu(g_pid, &su1, &ss1) != 0) die("the server (pid %d) is gone", g_pid);
    double ccpu1 = client_cpu_s(), busy1 = machine_busy_s();
    for (int t = 0; t < g_threads; ++t) pthread_join(ws[t].th, NULL);
    for (int i = 0; i < g_flows; ++i) close(flows[i].fd);

    unsigned long long d[C_N];
    for (int i = 0; i < C_N; ++i) d[i] = c1[i] - c0[i];
    uint32_t *hist = ws[0].hist;
    for (int t = 1; t < g_threads; ++t)
        for (int b = 0; b <= HIST_BUCKETS; ++b) hist[b] += ws[t].hist[b];
    unsigned long long recorded = 0;
    for (int b = 0; b <= HIST_BUCKETS; ++b) recorded += hist[b];

    double secs = (double)(t1 - t0) * 1e-9, n = (double)d[C_DGRAMS];
    double scpu = (su1 - su0) + (ss1 - ss0), ccpu = ccpu1 - ccpu0;
    double per = n > 0 ? 1e6 / n : 0;
    unsigned long long calls = d[C_RECV_CALLS] + d[C_SEND_CALLS] + d[C_WAIT_CALLS];
    printf("result mode=udp flows=%d window=%d threads=%d size=%d secs=%.3f dgrams=%llu dgrams_s=%.0f sent=%llu "
           "lost=%llu late=%llu bad=%llu send_errs=%llu recv_errs=%llu p50_us=%.1f p99_us=%.1f "
           "server_cpu_s=%.3f server_user_us_per_dgram=%.3f server_sys_us_per_dgram=%.3f server_cpu_us_per_dgram=%.3f "
           "client_cpu_us_per_dgram=%.3f client_syscalls_per_dgram=%.3f client_recv_batch=%.2f client_send_batch=%.2f "
           "other_cpu_s=%.2f\n",
           g_flows, g_window, g_threads, g_size, secs, d[C_DGRAMS], n / secs, d[C_SENT], d[C_LOST], d[C_LATE], d[C_BAD],
           d[C_SEND_ERR], d[C_RECV_ERR], percentile_us(hist, recorded, 0.50), percentile_us(hist, recorded, 0.99),
           g_pid ? scpu : -1.0, g_pid ? (su1 - su0) * per : -1.0, g_pid ? (ss1 - ss0) * per : -1.0,
           g_pid ? scpu * per : -1.0, ccpu * per, (double)calls * (n > 0 ? 1 / n : 0),
           d[C_RECV_CALLS] ? n / (double)d[C_RECV_CALLS] : 0, d[C_SEND_CALLS] ? (double)d[C_SENT] / (double)d[C_SEND_CALLS] : 0,
           busy1 - busy0 - (g_pid ? scpu : 0) - ccpu);
    if (d[C_BAD] > 0) die("%llu echoes had the wrong length or flow", d[C_BAD]);
    if (d[C_DGRAMS] == 0) die("no echo in the %.1f s window (is the server at %s:%d up?)", secs, g_addr, g_port);
    return 0;
}
