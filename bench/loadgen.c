/* loadgen: the load client of bench/run.sh. Drives any TCP echo server on loopback and,
 * given the server's PID, reads the server's CPU time and memory from /proc itself, at the
 * exact edges of its measurement window.
 *
 *   loadgen bulk     -P PORT [-n BYTES] [-b BUF] [-p PID] [-T SECS]
 *       One connection; a sender thread writes BYTES while the main thread reads the echo
 *       (full duplex), then half-closes and expects EOF after exactly BYTES. Only the count
 *       is verified. Reports MiB/s (BYTES / time from first send to last echoed byte) and
 *       the server's CPU seconds per GiB.
 *   loadgen pingpong -P PORT -c CONNS [-s SIZE] [-w WARMUP] [-d SECS] [-t THREADS] [-p PID] [-T SECS]
 *       CONNS connections, each with one SIZE-byte message in flight: send, wait for the whole
 *       echo, send the next. Runs WARMUP seconds, prints "ready" on stdout (bench/run.sh
 *       starts perf then), measures for SECS: msgs/s, latency p50/p99/p99.9 in µs, server
 *       CPU µs per message. A thread with one connection uses blocking recv/send; a thread
 *       with several uses one level-triggered epoll set (no epoll_ctl after setup).
 *       With --perf-ctl CTL --perf-ack ACK it prints "connected" after the warm-up, then
 *       opens the control FIFOs of a `perf stat -D -1 --control fifo:CTL,ACK` and enables the
 *       counters for exactly its measurement window.
 *   loadgen idle     -P PORT -n CONNS [-S SOURCES] [-p PID] [--hold] [-T SECS]
 *       Opens CONNS connections that never carry a byte (source addresses 127.0.0.2 ..
 *       127.0.0.(1+SOURCES), ephemeral ports chosen per 4-tuple), waits until the server
 *       process holds that many more fds, lets it settle and reports the growth of the
 *       server's anonymous memory and RSS per connection. Then closes them with RST (no
 *       TIME_WAIT left behind) or, with --hold, keeps them until stdin reaches EOF.
 *   loadgen quiet    [-d MAXSECS]
 *       Waits (at most MAXSECS) until the machine's busy CPU over 0.5 s is below 0.25 CPUs.
 *
 * bulk and pingpong also report other_cpu_s: the machine's busy CPU time over the window
 * minus the server's and the client's, i.e. what unrelated processes took meanwhile.
 *
 * Results are one line "result mode=... key=value ..." on stdout. Exit status 0 on success,
 * 1 on a failed check (short echo, extra bytes, timeout), 2 on usage errors.
 * Every loop is bounded: -T (default 120 s) is an alarm() that ends the process.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static const char *g_mode;
static int g_port;
static const char *g_addr = "127.0.0.1";
static long long g_bytes = 1LL << 30;
static size_t g_bufsize = 1 << 20;
static int g_pid = 0;
static int g_conns = 1;
static int g_msgsize = 64;
static double g_warmup = 1.0;
static double g_duration = 5.0;
static int g_threads = 0;
static int g_sources = 8;
static int g_hold = 0;
static int g_timeout = 120;
static const char *g_perf_ctl, *g_perf_ack;
static int g_ctl_fd = -1, g_ack_fd = -1;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen %s: ", g_mode ? g_mode : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "loadgen: time limit (-T) reached, giving up\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

/* ---- /proc readers ------------------------------------------------------------------- */

/* utime+stime+cutime+cstime (clock ticks) of one process and its ppid; -1 if gone. */
static int read_stat(int pid, long long *ticks, int *ppid) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')'); /* comm may contain spaces */
    if (p == NULL) return -1;
    /* fields after comm: 3 state, 4 ppid, ... 14 utime 15 stime 16 cutime 17 cstime */
    char state;
    int pp;
    unsigned long long ut, st;
    long long cut, cst;
    if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &state, &pp, &ut, &st,
               &cut, &cst) != 6)
        return -1;
    *ticks = (long long)(ut + st) + cut + cst;
    *ppid = pp;
    return 0;
}

/* CPU seconds of `root` and all its descendants (socat forks per connection; cutime/cstime
 * carry the children that were already reaped). Threads are inside their process's stat. */
static double tree_cpu_s(int root, int *nproc) {
    static int pids[65536], ppids[65536];
    static long long ticks[65536];
    int n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 65536) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        int pid = atoi(e->d_name);
        if (read_stat(pid, &ticks[n], &ppids[n]) == 0) pids[n++] = pid;
    }
    closedir(d);
    /* mark descendants: repeat until no change (trees here are 3 levels deep at most) */
    static unsigned char in[65536];
    memset(in, 0, sizeof in);
    for (int i = 0; i < n; ++i) in[i] = pids[i] == root;
    for (int changed = 1, rounds = 0; changed && rounds < 16; ++rounds) {
        changed = 0;
        for (int i = 0; i < n; ++i) {
            if (in[i]) continue;
            for (int j = 0; j < n; ++j) {
                if (in[j] && pids[j] == ppids[i]) { in[i] = 1; changed = 1; break; }
            }
        }
    }
    long long sum = 0;
    int count = 0;
    for (int i = 0; i < n; ++i) {
        if (in[i]) { sum += ticks[i]; ++count; }
    }
    if (nproc) *nproc = count;
    return (double)sum / (double)sysconf(_SC_CLK_TCK);
}

/* Waits (bounded) until `root` has no child processes left, so their CPU time has moved into
 * its cutime/cstime. Only socat has children. */
static void wait_children_reaped(int root, double max_s) {
    double end = now_s() + max_s;
    int nproc = 1;
    while (now_s() < end) {
        tree_cpu_s(root, &nproc);
        if (nproc <= 1) return;
        sleep_s(0.05);
    }
}

static long long smaps_kib(int pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    size_t klen = strlen(key);
    long long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') { v = atoll(line + klen + 1); break; }
    }
    fclose(f);
    return v;
}

static long long meminfo_kib(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL) return -1;
    char line[256];
    size_t klen = strlen(key);
    long long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') { v = atoll(line + klen + 1); break; }
    }
    fclose(f);
    return v;
}

/* Non-idle CPU seconds of the whole machine (all CPUs) since boot, from /proc/stat. The
 * difference over a window, minus the server's and our own CPU, is what other processes took:
 * reported as other_cpu_s, so a sample taken while something else ran is visible. */
static double machine_busy_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) return 0;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8) return 0;
    /* user nice system [idle] [iowait] irq softirq steal; guest time is inside user */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

static int count_fds(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (d == NULL) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    return n;
}

/* ---- sockets ------------------------------------------------------------------------- */

static int connect_to(const char *src) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    if (src != NULL) {
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in s = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &s.sin_addr);
        if (bind(fd, (struct sockaddr *)&s, sizeof s) != 0) die("bind %s: %s", src, strerror(errno));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, g_addr, &sa.sin_addr);
    while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno == EINTR) continue;
        die("connect %s:%d: %s", g_addr, g_port, strerror(errno));
    }
    return fd;
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static double client_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---- bulk ---------------------------------------------------------------------------- */

static int bulk_fd;
static double bulk_send_done;

static void *bulk_sender(void *arg) {
    (void)arg;
    char *buf = malloc(g_bufsize);
    if (buf == NULL) die("out of memory");
    for (size_t i = 0; i < g_bufsize; ++i) buf[i] = (char)(i * 131 + 7);
    long long left = g_bytes;
    while (left > 0) {
        size_t n = left < (long long)g_bufsize ? (size_t)left : g_bufsize;
        ssize_t w = send(bulk_fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("send: %s", strerror(errno));
        }
        left -= w;
    }
    shutdown(bulk_fd, SHUT_WR);
    bulk_send_done = now_s();
    free(buf);
    return NULL;
}

static int run_bulk(void) {
    double cpu0 = g_pid ? tree_cpu_s(g_pid, NULL) : 0;
    double ccpu0 = client_cpu_s();
    double busy0 = machine_busy_s();
    bulk_fd = connect_to(NULL);
    char *buf = malloc(g_bufsize);
    if (buf == NULL) die("out of memory");
    double t0 = now_s();
    pthread_t th;
    pthread_create(&th, NULL, bulk_sender, NULL);
    long long got = 0;
    while (got < g_bytes) {
        ssize_t n = recv(bulk_fd, buf, g_bufsize, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("recv after %lld bytes: %s", got, strerror(errno));
        }
        if (n == 0) die("EOF after %lld of %lld bytes: the echo was truncated", got, g_bytes);
        got += n;
    }
    double t1 = now_s();
    pthread_join(th, NULL);
    /* Nothing may follow the echo but EOF. */
    ssize_t extra;
    while ((extra = recv(bulk_fd, buf, g_bufsize, 0)) < 0 && errno == EINTR) {
    }
    if (extra > 0) die("%zd bytes more than were sent", extra);
    close(bulk_fd);
    double ccpu1 = client_cpu_s();
    double busy1 = machine_busy_s();
    double cpu = 0;
    if (g_pid) {
        wait_children_reaped(g_pid, 3.0);
        cpu = tree_cpu_s(g_pid, NULL) - cpu0;
    }
    double secs = t1 - t0;
    double gib = (double)g_bytes / (double)(1LL << 30);
    double server_part = g_pid ? cpu : 0;
    printf("result mode=bulk bytes=%lld secs=%.3f mib_s=%.1f server_cpu_s=%.3f server_cpu_s_per_gib=%.3f "
           "client_cpu_s=%.3f other_cpu_s=%.2f\n",
           g_bytes, secs, (double)g_bytes / (1024.0 * 1024.0) / secs, cpu, g_pid ? cpu / gib : -1.0,
           ccpu1 - ccpu0, busy1 - busy0 - server_part - (ccpu1 - ccpu0));
    free(buf);
    return 0;
}

/* ---- pingpong ------------------------------------------------------------------------ */

/* Latency histogram: 100 ns buckets up to 100 ms, one overflow bucket. */
#define HIST_BUCKETS 1000000
#define HIST_NS 100

enum { PH_WARMUP = 0, PH_MEASURE = 1, PH_STOP = 2 };
static atomic_int g_phase;

struct conn {
    int fd;
    int got;
    uint64_t sent_ns;
};

struct worker {
    pthread_t th;
    struct conn *conns;
    int nconns;
    atomic_ullong done; /* completed round trips, whole run */
    uint32_t *hist;
    unsigned long long overflow;
    int error;
};

static void record(struct worker *w, uint64_t lat_ns) {
    if (atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_MEASURE) return;
    uint64_t b = lat_ns / HIST_NS;
    if (b < HIST_BUCKETS) w->hist[b]++;
    else w->overflow++;
}

static char g_msg[65536];

static int send_msg(struct conn *c) {
    c->got = 0;
    c->sent_ns = now_ns();
    ssize_t w = send(c->fd, g_msg, (size_t)g_msgsize, MSG_NOSIGNAL);
    if (w == g_msgsize) return 0;
    fprintf(stderr, "loadgen pingpong: send returned %zd (%s)\n", w, w < 0 ? strerror(errno) : "short");
    return -1;
}

static void *pp_blocking(void *arg) {
    struct worker *w = arg;
    struct conn *c = &w->conns[0];
    char buf[65536];
    while (atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_STOP) {
        if (send_msg(c) != 0) { w->error = 1; break; }
        while (c->got < g_msgsize) {
            ssize_t n = recv(c->fd, buf, (size_t)(g_msgsize - c->got), 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fprintf(stderr, "loadgen pingpong: recv: %s\n", n == 0 ? "EOF" : strerror(errno));
                w->error = 1;
                return NULL;
            }
            c->got += (int)n;
        }
        record(w, now_ns() - c->sent_ns);
        atomic_fetch_add_explicit(&w->done, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *pp_epoll(void *arg) {
    struct worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    char buf[65536];
    for (int i = 0; i < w->nconns; ++i) {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &w->conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, w->conns[i].fd, &e);
        if (send_msg(&w->conns[i]) != 0) { w->error = 1; return NULL; }
    }
    struct epoll_event events[256];
    int outstanding = w->nconns;
    while (outstanding > 0) {
        int stopping = atomic_load_explicit(&g_phase, memory_order_relaxed) == PH_STOP;
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR) { w->error = 1; break; }
        for (int i = 0; i < n; ++i) {
            struct conn *c = events[i].data.ptr;
            ssize_t r = recv(c->fd, buf, (size_t)(g_msgsize - c->got), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) {
                fprintf(stderr, "loadgen pingpong: recv: %s\n", r == 0 ? "EOF" : strerror(errno));
                w->error = 1;
                outstanding = 0;
                break;
            }
            c->got += (int)r;
            if (c->got < g_msgsize) continue;
            uint64_t t = now_ns();
            record(w, t - c->sent_ns);
            atomic_fetch_add_explicit(&w->done, 1, memory_order_relaxed);
            if (stopping) {
                --outstanding;
                continue;
            }
            if (send_msg(c) != 0) { w->error = 1; outstanding = 0; break; }
        }
    }
    close(ep);
    return NULL;
}

static unsigned long long total_done(struct worker *ws, int nw) {
    unsigned long long s = 0;
    for (int i = 0; i < nw; ++i) s += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
    return s;
}

static double percentile_us(const uint32_t *hist, unsigned long long overflow, unsigned long long total, double q) {
    if (total == 0) return 0;
    unsigned long long want = (unsigned long long)(q * (double)total);
    if (want >= total) want = total - 1;
    unsigned long long seen = 0;
    for (int b = 0; b < HIST_BUCKETS; ++b) {
        seen += hist[b];
        if (seen > want) return ((double)b + 0.5) * HIST_NS / 1000.0;
    }
    (void)overflow;
    return (double)HIST_BUCKETS * HIST_NS / 1000.0; /* in the overflow bucket: at least this */
}

/* perf stat --control fifo:CTL,ACK: "enable"/"disable" the counters at the exact edges of our
 * window, so syscalls and messages are counted over the same interval. */
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
    printf("connected\n"); /* run.sh starts perf now, on the server's current processes */
    fflush(stdout);
    /* Both opens block until perf opens its ends; -T bounds the wait. */
    g_ctl_fd = open(g_perf_ctl, O_WRONLY | O_CLOEXEC);
    if (g_ctl_fd < 0) die("open %s: %s", g_perf_ctl, strerror(errno));
    g_ack_fd = open(g_perf_ack, O_RDONLY | O_CLOEXEC);
    if (g_ack_fd < 0) die("open %s: %s", g_perf_ack, strerror(errno));
}

static int run_pingpong(void) {
    memset(g_msg, 'x', sizeof g_msg);
    if (g_msgsize < 1 || g_msgsize > (int)sizeof g_msg) die("bad -s");
    int nthreads = g_threads > 0 ? g_threads : 1;
    if (nthreads > g_conns) nthreads = g_conns;
    struct conn *conns = calloc((size_t)g_conns, sizeof *conns);
    struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
    for (int i = 0; i < g_conns; ++i) {
        conns[i].fd = connect_to(NULL);
        set_nodelay(conns[i].fd);
    }
    /* contiguous slices of the connection array per thread */
    for (int t = 0, start = 0; t < nthreads; ++t) {
        int cnt = g_conns / nthreads + (t < g_conns % nthreads ? 1 : 0);
        ws[t].conns = conns + start;
        ws[t].nconns = cnt;
        ws[t].hist = calloc(HIST_BUCKETS, sizeof(uint32_t));
        if (ws[t].hist == NULL) die("out of memory");
        start += cnt;
    }
    atomic_store(&g_phase, PH_WARMUP);
    for (int t = 0; t < nthreads; ++t)
        pthread_create(&ws[t].th, NULL, ws[t].nconns == 1 ? pp_blocking : pp_epoll, &ws[t]);

    sleep_s(g_warmup);
    perf_attach();
    perf_command("enable\n");
    double cpu0 = g_pid ? tree_cpu_s(g_pid, NULL) : 0;
    double ccpu0 = client_cpu_s();
    double busy0 = machine_busy_s();
    unsigned long long m0 = total_done(ws, nthreads);
    double t0 = now_s();
    atomic_store(&g_phase, PH_MEASURE);
    printf("ready\n");
    fflush(stdout);
    sleep_s(g_duration);
    unsigned long long m1 = total_done(ws, nthreads);
    double t1 = now_s();
    perf_command("disable\n");
    atomic_store(&g_phase, PH_STOP);
    double cpu1 = g_pid ? tree_cpu_s(g_pid, NULL) : 0;
    double ccpu1 = client_cpu_s();
    double busy1 = machine_busy_s();
    int err = 0;
    for (int t = 0; t < nthreads; ++t) {
        pthread_join(ws[t].th, NULL);
        err |= ws[t].error;
    }
    for (int i = 0; i < g_conns; ++i) close(conns[i].fd);
    if (err) die("an echo failed (see above)");

    uint32_t *hist = ws[0].hist;
    unsigned long long overflow = ws[0].overflow, recorded = 0;
    for (int t = 1; t < nthreads; ++t) {
        for (int b = 0; b < HIST_BUCKETS; ++b) hist[b] += ws[t].hist[b];
        overflow += ws[t].overflow;
    }
    for (int b = 0; b < HIST_BUCKETS; ++b) recorded += hist[b];
    recorded += overflow;
    double secs = t1 - t0;
    unsigned long long msgs = m1 - m0;
    double cpu = cpu1 - cpu0;
    printf("result mode=pingpong conns=%d size=%d threads=%d secs=%.3f msgs=%llu msgs_s=%.0f p50_us=%.1f "
           "p99_us=%.1f p999_us=%.1f server_cpu_s=%.3f server_cpu_us_per_msg=%.3f client_cpu_us_per_msg=%.3f "
           "other_cpu_s=%.2f\n",
           g_conns, g_msgsize, nthreads, secs, msgs, (double)msgs / secs,
           percentile_us(hist, overflow, recorded, 0.50), percentile_us(hist, overflow, recorded, 0.99),
           percentile_us(hist, overflow, recorded, 0.999), cpu,
           g_pid && msgs ? cpu * 1e6 / (double)msgs : -1.0, msgs ? (ccpu1 - ccpu0) * 1e6 / (double)msgs : -1.0,
           busy1 - busy0 - (g_pid ? cpu : 0) - (ccpu1 - ccpu0));
    return 0;
}

/* ---- idle ---------------------------------------------------------------------------- */

static int wait_fds_at_least(int want, double max_s) {
    double end = now_s() + max_s;
    int have = count_fds(g_pid);
    while (have >= 0 && have < want && now_s() < end) {
        sleep_s(0.02);
        have = count_fds(g_pid);
    }
    return have;
}

static int run_idle(void) {
    if (!g_pid) die("idle needs -p PID (the server)");
    int n = (int)g_bytes;
    int *fds = malloc(sizeof(int) * (size_t)n);
    int fd0 = count_fds(g_pid);
    long long anon0 = smaps_kib(g_pid, "Anonymous"), rss0 = smaps_kib(g_pid, "Rss");
    long long slab0 = meminfo_kib("Slab");
    double t0 = now_s();
    for (int i = 0; i < n; ++i) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 2 + i % g_sources);
        fds[i] = connect_to(src);
        /* Pace: keep at most ~1000 connections in the server's accept queue, so none is
         * dropped and retried a second later. */
        if (i % 256 == 255) wait_fds_at_least(fd0 + i + 1 - 1000, 10.0);
    }
    double t1 = now_s();
    int have = wait_fds_at_least(fd0 + n, 30.0);
    sleep_s(1.0); /* let the server finish whatever it does after accept() */
    long long anon1 = smaps_kib(g_pid, "Anonymous"), rss1 = smaps_kib(g_pid, "Rss");
    long long slab1 = meminfo_kib("Slab");
    int accepted = have - fd0;
    printf("result mode=idle conns=%d server_fds_added=%d connect_secs=%.2f anon_kib_before=%lld anon_kib_after=%lld "
           "rss_kib_before=%lld rss_kib_after=%lld anon_bytes_per_conn=%.1f rss_bytes_per_conn=%.1f "
           "kernel_slab_bytes_per_conn_both_ends=%.0f\n",
           n, accepted, t1 - t0, anon0, anon1, rss0, rss1, (double)(anon1 - anon0) * 1024.0 / n,
           (double)(rss1 - rss0) * 1024.0 / n, (double)(slab1 - slab0) * 1024.0 / n);
    fflush(stdout);
    if (accepted < n) fprintf(stderr, "loadgen idle: the server holds only %d of %d connections\n", accepted, n);
    if (g_hold) {
        char c;
        alarm(0);
        while (read(0, &c, 1) > 0) {
        }
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* RST: no TIME_WAIT */
    for (int i = 0; i < n; ++i) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fds[i]);
    }
    /* Bounded wait for the server to close its side, so the next scenario starts clean. */
    double end = now_s() + 20.0;
    while (now_s() < end && count_fds(g_pid) > fd0 + 16) sleep_s(0.05);
    return accepted < n ? 1 : 0;
}

/* ---- quiet -------------------------------------------------------------------------- */

/* Waits until the rest of the machine is quiet: the busy CPU over a 0.5 s sample below
 * 0.25 CPUs, or -d seconds passed. Another job on these 2 cores skews every number. */
static int run_quiet(void) {
    double start = now_s(), busy = 0;
    for (int i = 0; i < 1000; ++i) {
        double b0 = machine_busy_s(), t0 = now_s();
        sleep_s(0.5);
        busy = (machine_busy_s() - b0) / (now_s() - t0);
        if (busy < 0.25 || now_s() - start >= g_duration) break;
    }
    printf("result mode=quiet waited_s=%.1f busy_cpus=%.2f\n", now_s() - start, busy);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen bulk     -P PORT [-n BYTES] [-b BUF] [-p PID] [-T SECS]\n"
            "       loadgen pingpong -P PORT -c CONNS [-s SIZE] [-w WARMUP] [-d SECS] [-t THREADS] [-p PID]\n"
            "                        [--perf-ctl FIFO --perf-ack FIFO]\n"
            "       loadgen idle     -P PORT -n CONNS [-S SOURCES] [-p PID] [--hold]\n"
            "       loadgen quiet    [-d MAXSECS]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    g_mode = argv[1];
    static const struct option longopts[] = {{"hold", no_argument, NULL, 'H'},
                                             {"perf-ctl", required_argument, NULL, 'C'},
                                             {"perf-ack", required_argument, NULL, 'A'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "a:P:n:b:p:c:s:w:d:t:S:T:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': g_addr = optarg; break;
        case 'P': g_port = atoi(optarg); break;
        case 'n': g_bytes = atoll(optarg); break;
        case 'b': g_bufsize = (size_t)atoll(optarg); break;
        case 'p': g_pid = atoi(optarg); break;
        case 'c': g_conns = atoi(optarg); break;
        case 's': g_msgsize = atoi(optarg); break;
        case 'w': g_warmup = atof(optarg); break;
        case 'd': g_duration = atof(optarg); break;
        case 't': g_threads = atoi(optarg); break;
        case 'S': g_sources = atoi(optarg); break;
        case 'T': g_timeout = atoi(optarg); break;
        case 'H': g_hold = 1; break;
        case 'C': g_perf_ctl = optarg; break;
        case 'A': g_perf_ack = optarg; break;
        default: usage();
        }
    }
    if (strcmp(g_mode, "quiet") == 0) g_port = 1; /* needs no server */
    if (g_port <= 0 || g_bufsize == 0 || g_conns < 1 || g_sources < 1 || g_sources > 250) usage();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)g_timeout);
    if (strcmp(g_mode, "bulk") == 0) return run_bulk();
    if (strcmp(g_mode, "pingpong") == 0) return run_pingpong();
    if (strcmp(g_mode, "idle") == 0) return run_idle();
    if (strcmp(g_mode, "quiet") == 0) return run_quiet();
    usage();
}
