/*
 * io_shim: an LD_PRELOAD library for the abuse tests (never installed). Loaded into the real
 * tcpechod, it wraps the socket calls the daemon makes (nm -D tcpechod: recv, send, recvmmsg,
 * sendmmsg, accept4, read, write, epoll_wait, epoll_ctl, close) and, on a pseudo-random
 * schedule, makes them fail or come up short the way the kernel may:
 *
 *   EINTR       -1/EINTR without calling the real function (recv, send, read, write,
 *               recvmmsg, sendmmsg, accept4, epoll_wait).
 *   short I/O   the real function with a shorter length (log-uniform in 1..len-1) or, for
 *               recvmmsg/sendmmsg, fewer messages (1..vlen-1).
 *   ECONNABORTED from accept4 without calling it (the pending connection stays queued; the
 *               daemon's listeners are level-triggered, so it is reported again).
 *   EAGAIN      from sendmmsg on a datagram socket without calling it ("send buffer full"),
 *               at most ABUSE_SHIM_EAGAIN_MAX times, counting the datagrams it refused.
 *
 * Faithful short I/O. The daemon relies on two kernel guarantees (docs/architecture.md): a
 * short read of a stream or a short recvmmsg batch means the queue was empty at that moment,
 * and a short write means the send buffer was full; in both cases a later arrival (of data,
 * of buffer space) is a new edge on its edge-triggered registration. A short read invented
 * here leaves data queued with no edge to come, which no kernel does. So after a short read
 * or write that the shim caused (the real call took all it was offered), the shim re-arms the
 * fd's own EPOLLET registration with EPOLL_CTL_MOD and the same events and data; epoll then
 * reports the fd again if it is readable/writable, exactly as if the rest had arrived (or the
 * buffer drained) a moment later. Registrations are learnt by wrapping epoll_ctl; only
 * EPOLLET ones are re-armed (the listeners and libev's fds are level-triggered anyway).
 *
 * Only sockets are touched: calls that exist only for sockets act unconditionally, read()
 * and write() only after fstat() says S_ISSOCK (so config files, eventfds, signalfds, pipes
 * and the log pass through untouched).
 *
 * Environment (all optional; without ABUSE_SHIM_REPORT nothing is injected):
 *   ABUSE_SHIM_REPORT       file the counters are written to at exit ("name value" lines)
 *   ABUSE_SHIM_SEED         PRNG seed (default 1); thread N uses a stream derived from it
 *   ABUSE_SHIM_EINTR        probability per call of EINTR, e.g. 0.05
 *   ABUSE_SHIM_SHORT        probability per call of short I/O
 *   ABUSE_SHIM_ECONNABORTED probability per accept4 call of ECONNABORTED
 *   ABUSE_SHIM_EAGAIN       probability per sendmmsg call (datagram sockets) of EAGAIN
 *   ABUSE_SHIM_EAGAIN_MAX   most EAGAIN injections (default unlimited)
 *   ABUSE_SHIM_REARM        0: do not re-arm after short I/O (shows the daemon then stalls,
 *                           as it must: no kernel leaves data queued after a short read)
 *
 * Besides what it injects, it counts EINTR returned by the real calls (a signal storm with
 * SIGSTOP/SIGCONT interrupts epoll_wait, signal(7)), and re-arms that worked or failed.
 * Thread-safe: a PRNG per thread, atomic counters, a lock per stripe of the epoll table.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- counters ------------------------------------------------------------------------- */

#define SHIM_COUNTERS(X)                                                                    \
    X(calls_recv) X(calls_send) X(calls_read) X(calls_write) X(calls_recvmmsg)             \
    X(calls_sendmmsg) X(calls_accept4) X(calls_epoll_wait)                                 \
    X(eintr_recv) X(eintr_send) X(eintr_read) X(eintr_write) X(eintr_recvmmsg)             \
    X(eintr_sendmmsg) X(eintr_accept4) X(eintr_epoll_wait)                                 \
    X(short_recv) X(short_send) X(short_read) X(short_write) X(short_recvmmsg)              \
    X(short_sendmmsg)                                                                      \
    X(short_effective_recv) X(short_effective_send) X(short_effective_read)                \
    X(short_effective_write) X(short_effective_recvmmsg) X(short_effective_sendmmsg)       \
    X(econnaborted_accept4) X(eagain_sendmmsg) X(eagain_sendmmsg_datagrams)                \
    X(rearm_ok) X(rearm_failed)                                                            \
    X(real_eintr_recv) X(real_eintr_send) X(real_eintr_read) X(real_eintr_write)           \
    X(real_eintr_recvmmsg) X(real_eintr_sendmmsg) X(real_eintr_accept4)                    \
    X(real_eintr_epoll_wait)

enum shim_counter {
#define SHIM_ENUM(name) C_##name,
    SHIM_COUNTERS(SHIM_ENUM)
#undef SHIM_ENUM
        C_COUNT
};

static const char *const counter_names[C_COUNT] = {
#define SHIM_NAME(name) #name,
    SHIM_COUNTERS(SHIM_NAME)
#undef SHIM_NAME
};

static _Atomic unsigned long long counters[C_COUNT];

static void count(enum shim_counter c, unsigned long long n) {
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

/* ---- configuration -------------------------------------------------------------------- */

static int active;
static int rearm_enabled = 1;
static unsigned long long seed = 1;
/* Probabilities scaled to 2^32 (compared with a 32-bit roll). */
static uint64_t p_eintr, p_short, p_aborted, p_eagain;
static unsigned long long eagain_max = ~0ULL;
static char report_path[4096];

static uint64_t probability(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') return 0;
    double p = strtod(v, NULL);
    if (!(p > 0)) return 0;
    if (p >= 1) return 1ULL << 32;
    return (uint64_t)(p * 4294967296.0);
}

/* ---- real functions ------------------------------------------------------------------- */

static void *next_symbol(const char *name) {
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        fprintf(stderr, "io_shim: dlsym(RTLD_NEXT, \"%s\") failed: %s\n", name, dlerror());
        abort();
    }
    return p;
}

/* Function pointers from dlsym without an object-to-function pointer cast (ISO C). All are
 * resolved by the constructor, before any thread exists; REAL() also resolves one that a call
 * made before the constructor (from another library's constructor) needs. */
#define RESOLVE(name)                                                          \
    do {                                                                       \
        void *sym_ = next_symbol(#name);                                       \
        memcpy(&real_##name, &sym_, sizeof sym_);                              \
    } while (0)
#define REAL(type, name)                                                       \
    if (real_##name == NULL) RESOLVE(name);

typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*recvmmsg_fn)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
typedef int (*sendmmsg_fn)(int, struct mmsghdr *, unsigned int, int);
typedef int (*accept4_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict, int);
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_ctl_fn)(int, int, int, struct epoll_event *);
typedef int (*close_fn)(int);

static recv_fn real_recv;
static send_fn real_send;
static read_fn real_read;
static write_fn real_write;
static recvmmsg_fn real_recvmmsg;
static sendmmsg_fn real_sendmmsg;
static accept4_fn real_accept4;
static epoll_wait_fn real_epoll_wait;
static epoll_ctl_fn real_epoll_ctl;
static close_fn real_close;

static void resolve_all(void) {
    RESOLVE(recv);
    RESOLVE(send);
    RESOLVE(read);
    RESOLVE(write);
    RESOLVE(recvmmsg);
    RESOLVE(sendmmsg);
    RESOLVE(accept4);
    RESOLVE(epoll_wait);
    RESOLVE(epoll_ctl);
    RESOLVE(close);
}

static epoll_ctl_fn real_epoll_ctl_ptr(void) {
    REAL(epoll_ctl_fn, epoll_ctl)
    return real_epoll_ctl;
}

/* ---- per-thread PRNG (splitmix64 to seed, xorshift64* to draw) ------------------------ */

static _Atomic unsigned long long thread_counter;
static _Thread_local uint64_t rng_state;

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t rnd(void) {
    if (rng_state == 0) {
        unsigned long long n = atomic_fetch_add(&thread_counter, 1) + 1;
        rng_state = splitmix64(seed ^ splitmix64(n));
        if (rng_state == 0) rng_state = 1;
    }
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t roll(void) { return rnd() >> 32; }

/* A length in 1..len-1 (len >= 2), log-uniform: as many tiny pieces as large ones. */
static size_t short_length(size_t len) {
    size_t max = len - 1;
    unsigned bits = 64U - (unsigned)__builtin_clzll((unsigned long long)max);
    unsigned b = (unsigned)(rnd() % bits);
    size_t lo = (size_t)1 << b;
    size_t hi = ((size_t)2 << b) - 1;
    if (hi > max) hi = max;
    return lo + (size_t)(rnd() % (hi - lo + 1));
}

static int is_socket(int fd) {
    struct stat st;
    int saved = errno;
    int ok = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    errno = saved;
    return ok;
}

static int is_datagram_socket(int fd) {
    int type = 0;
    socklen_t len = sizeof type;
    int saved = errno;
    int ok = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
    errno = saved;
    return ok;
}

/* ---- edge-triggered registrations (learnt from epoll_ctl) ----------------------------- */

#define MAX_TRACKED_FD 65536
#define STRIPES 64

struct registration {
    int epfd_plus_one; /* 0: none */
    uint32_t events;
    uint64_t data;
};

static struct registration registrations[MAX_TRACKED_FD];
static _Atomic int stripe_locks[STRIPES];

static void lock_fd(int fd) {
    _Atomic int *l = &stripe_locks[fd % STRIPES];
    int expected = 0;
    while (!atomic_compare_exchange_weak_explicit(l, &expected, 1, memory_order_acquire, memory_order_relaxed)) {
        expected = 0;
    }
}

static void unlock_fd(int fd) { atomic_store_explicit(&stripe_locks[fd % STRIPES], 0, memory_order_release); }

static void forget_fd(int fd, int epfd) {
    if (fd < 0 || fd >= MAX_TRACKED_FD) return;
    lock_fd(fd);
    if (epfd < 0 || registrations[fd].epfd_plus_one == epfd + 1) registrations[fd].epfd_plus_one = 0;
    unlock_fd(fd);
}

/* The short I/O was ours: report the fd again, as a later arrival would. */
static void rearm(int fd) {
    if (!rearm_enabled || fd < 0 || fd >= MAX_TRACKED_FD) return;
    lock_fd(fd);
    struct registration r = registrations[fd];
    unlock_fd(fd);
    if (r.epfd_plus_one == 0) return;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = r.events;
    ev.data.u64 = r.data;
    int saved = errno;
    if (real_epoll_ctl_ptr()(r.epfd_plus_one - 1, EPOLL_CTL_MOD, fd, &ev) == 0) count(C_rearm_ok, 1);
    else count(C_rearm_failed, 1);
    errno = saved;
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) {
    int r = real_epoll_ctl_ptr()(epfd, op, fd, event);
    if (r != 0 || fd < 0 || fd >= MAX_TRACKED_FD) return r;
    int saved = errno;
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && event != NULL && (event->events & EPOLLET) != 0) {
        lock_fd(fd);
        registrations[fd].epfd_plus_one = epfd + 1;
        registrations[fd].events = event->events;
        registrations[fd].data = event->data.u64;
        unlock_fd(fd);
    } else {
        forget_fd(fd, epfd);
    }
    errno = saved;
    return r;
}

int close(int fd) {
    REAL(close_fn, close)
    forget_fd(fd, -1);
    return real_close(fd);
}

/* ---- the wrapped calls ---------------------------------------------------------------- */

enum decision { PASS, INJECT_EINTR, INJECT_SHORT };

static enum decision decide(void) {
    if (!active) return PASS;
    uint64_t r = roll();
    if (r < p_eintr) return INJECT_EINTR;
    if (r < p_eintr + p_short) return INJECT_SHORT;
    return PASS;
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    REAL(recv_fn, recv)
    count(C_calls_recv, 1);
    enum decision d = decide();
    if (d == INJECT_EINTR) {
        count(C_eintr_recv, 1);
        errno = EINTR;
        return -1;
    }
    if (d == INJECT_SHORT && len >= 2) {
        size_t k = short_length(len);
        count(C_short_recv, 1);
        ssize_t n = real_recv(fd, buf, k, flags);
        if (n == (ssize_t)k) {
            count(C_short_effective_recv, 1);
            rearm(fd);
        }
        return n;
    }
    ssize_t n = real_recv(fd, buf, len, flags);
    if (n < 0 && errno == EINTR) count(C_real_eintr_recv, 1);
    return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    REAL(send_fn, send)
    count(C_calls_send, 1);
    enum decision d = decide();
    if (d == INJECT_EINTR) {
        count(C_eintr_send, 1);
        errno = EINTR;
        return -1;
    }
    if (d == INJECT_SHORT && len >= 2) {
        size_t k = short_length(len);
        count(C_short_send, 1);
        ssize_t n = real_send(fd, buf, k, flags);
        if (n == (ssize_t)k) {
            count(C_short_effective_send, 1);
            rearm(fd);
        }
        return n;
    }
    ssize_t n = real_send(fd, buf, len, flags);
    if (n < 0 && errno == EINTR) count(C_real_eintr_send, 1);
    return n;
}

ssize_t read(int fd, void *buf, size_t len) {
    REAL(read_fn, read)
    count(C_calls_read, 1);
    enum decision d = decide();
    if (d != PASS && is_socket(fd)) {
        if (d == INJECT_EINTR) {
            count(C_eintr_read, 1);
            errno = EINTR;
            return -1;
        }
        if (len >= 2) {
            size_t k = short_length(len);
            count(C_short_read, 1);
            ssize_t n = real_read(fd, buf, k);
            if (n == (ssize_t)k) {
                count(C_short_effective_read, 1);
                rearm(fd);
            }
            return n;
        }
    }
    ssize_t n = real_read(fd, buf, len);
    if (n < 0 && errno == EINTR) count(C_real_eintr_read, 1);
    return n;
}

ssize_t write(int fd, const void *buf, size_t len) {
    REAL(write_fn, write)
    count(C_calls_write, 1);
    enum decision d = decide();
    if (d != PASS && is_socket(fd)) {
        if (d == INJECT_EINTR) {
            count(C_eintr_write, 1);
            errno = EINTR;
            return -1;
        }
        if (len >= 2) {
            size_t k = short_length(len);
            count(C_short_write, 1);
            ssize_t n = real_write(fd, buf, k);
            if (n == (ssize_t)k) {
                count(C_short_effective_write, 1);
                rearm(fd);
            }
            return n;
        }
    }
    ssize_t n = real_write(fd, buf, len);
    if (n < 0 && errno == EINTR) count(C_real_eintr_write, 1);
    return n;
}

int recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *timeout) {
    REAL(recvmmsg_fn, recvmmsg)
    count(C_calls_recvmmsg, 1);
    enum decision d = decide();
    if (d == INJECT_EINTR) {
        count(C_eintr_recvmmsg, 1);
        errno = EINTR;
        return -1;
    }
    if (d == INJECT_SHORT && vlen >= 2) {
        unsigned k = 1U + (unsigned)(rnd() % (vlen - 1U));
        count(C_short_recvmmsg, 1);
        int n = real_recvmmsg(fd, msgvec, k, flags, timeout);
        if (n == (int)k) {
            count(C_short_effective_recvmmsg, 1);
            rearm(fd);
        }
        return n;
    }
    int n = real_recvmmsg(fd, msgvec, vlen, flags, timeout);
    if (n < 0 && errno == EINTR) count(C_real_eintr_recvmmsg, 1);
    return n;
}

int sendmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags) {
    REAL(sendmmsg_fn, sendmmsg)
    count(C_calls_sendmmsg, 1);
    if (active && p_eagain != 0 && vlen > 0 && roll() < p_eagain && is_datagram_socket(fd)) {
        /* Claim one of the EAGAIN_MAX slots; give it back if they are all taken. */
        if (atomic_fetch_add(&counters[C_eagain_sendmmsg], 1) < eagain_max) {
            count(C_eagain_sendmmsg_datagrams, vlen);
            errno = EAGAIN;
            return -1;
        }
        atomic_fetch_sub(&counters[C_eagain_sendmmsg], 1);
    }
    enum decision d = decide();
    if (d == INJECT_EINTR) {
        count(C_eintr_sendmmsg, 1);
        errno = EINTR;
        return -1;
    }
    if (d == INJECT_SHORT && vlen >= 2) {
        unsigned k = 1U + (unsigned)(rnd() % (vlen - 1U));
        count(C_short_sendmmsg, 1);
        int n = real_sendmmsg(fd, msgvec, k, flags);
        if (n == (int)k) count(C_short_effective_sendmmsg, 1);
        return n;
    }
    int n = real_sendmmsg(fd, msgvec, vlen, flags);
    if (n < 0 && errno == EINTR) count(C_real_eintr_sendmmsg, 1);
    return n;
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict addrlen, int flags) {
    REAL(accept4_fn, accept4)
    count(C_calls_accept4, 1);
    if (active) {
        uint64_t r = roll();
        if (r < p_eintr) {
            count(C_eintr_accept4, 1);
            errno = EINTR;
            return -1;
        }
        if (r < p_eintr + p_aborted) {
            count(C_econnaborted_accept4, 1);
            errno = ECONNABORTED;
            return -1;
        }
    }
    int n = real_accept4(fd, addr, addrlen, flags);
    if (n < 0 && errno == EINTR) count(C_real_eintr_accept4, 1);
    return n;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
    REAL(epoll_wait_fn, epoll_wait)
    count(C_calls_epoll_wait, 1);
    if (active && roll() < p_eintr) {
        count(C_eintr_epoll_wait, 1);
        errno = EINTR;
        return -1;
    }
    int n = real_epoll_wait(epfd, events, maxevents, timeout);
    if (n < 0 && errno == EINTR) count(C_real_eintr_epoll_wait, 1);
    return n;
}

/* ---- set-up and report ---------------------------------------------------------------- */

__attribute__((constructor(101))) static void shim_init(void) {
    resolve_all();
    const char *path = getenv("ABUSE_SHIM_REPORT");
    if (path == NULL || *path == '\0' || strlen(path) >= sizeof report_path) return;
    memcpy(report_path, path, strlen(path) + 1);
    const char *s = getenv("ABUSE_SHIM_SEED");
    if (s != NULL && *s != '\0') seed = strtoull(s, NULL, 0);
    p_eintr = probability("ABUSE_SHIM_EINTR");
    p_short = probability("ABUSE_SHIM_SHORT");
    p_aborted = probability("ABUSE_SHIM_ECONNABORTED");
    p_eagain = probability("ABUSE_SHIM_EAGAIN");
    if (p_eintr + p_short > (1ULL << 32)) p_short = (1ULL << 32) - p_eintr;
    if (p_eintr + p_aborted > (1ULL << 32)) p_aborted = (1ULL << 32) - p_eintr;
    const char *m = getenv("ABUSE_SHIM_EAGAIN_MAX");
    if (m != NULL && *m != '\0') eagain_max = strtoull(m, NULL, 0);
    const char *ra = getenv("ABUSE_SHIM_REARM");
    if (ra != NULL && strcmp(ra, "0") == 0) rearm_enabled = 0;
    active = 1;
}

__attribute__((destructor)) static void shim_report(void) {
    if (!active) return;
    REAL(write_fn, write)
    REAL(close_fn, close)
    int fd = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[128];
    int len = snprintf(line, sizeof line, "pid %ld\nseed %llu\n", (long)getpid(), seed);
    if (len > 0) (void)!real_write(fd, line, (size_t)len);
    for (int i = 0; i < C_COUNT; ++i) {
        len = snprintf(line, sizeof line, "%s %llu\n", counter_names[i],
                       atomic_load_explicit(&counters[i], memory_order_relaxed));
        if (len > 0) (void)!real_write(fd, line, (size_t)len);
    }
    real_close(fd);
}
