// nfq-delayer: holds each packet of an NFQUEUE queue for a random delay, then accepts it, so
// packets overtake one another (delay and reordering without netem). For the fault tests.
//
//   nfq-delayer QUEUE MAX_DELAY_US [SEED]
//
// Each packet gets a delay drawn uniformly from [0, MAX_DELAY_US]. Prints "ready" on stdout
// once bound to the queue; on SIGTERM/SIGINT accepts whatever it holds, prints its counts on
// stderr ("packets N delayed N max_held N") and exits 0. Runs inside the namespace whose
// nft rule sends packets to the queue (queues are per network namespace).
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

std::uint64_t now_us() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

struct Held {
    std::uint64_t due_us;
    std::uint32_t id;
};

// Min-heap on the due time.
struct Later {
    bool operator()(const Held& a, const Held& b) const { return a.due_us > b.due_us; }
};

struct State {
    nfq_q_handle* queue = nullptr;
    std::vector<Held> held;
    std::uint64_t max_delay_us = 0;
    std::uint64_t rng = 0;
    std::uint64_t packets = 0;
    std::uint64_t delayed = 0;
    std::size_t max_held = 0;

    std::uint64_t next_random() {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        return rng * 2685821657736338717ull;
    }
};

constexpr std::size_t kMaxHeld = 16384;

void accept_packet(State& s, std::uint32_t id) {
    if (nfq_set_verdict(s.queue, id, NF_ACCEPT, 0, nullptr) < 0) std::perror("nfq_set_verdict");
}

int on_packet(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
    State& s = *static_cast<State*>(data);
    const nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
    if (ph == nullptr) return 0;
    const std::uint32_t id = ntohl(ph->packet_id);
    ++s.packets;
    const std::uint64_t delay = s.max_delay_us == 0 ? 0 : s.next_random() % (s.max_delay_us + 1);
    if (delay == 0 || s.held.size() >= kMaxHeld) {
        accept_packet(s, id);
        return 0;
    }
    ++s.delayed;
    s.held.push_back({now_us() + delay, id});
    std::push_heap(s.held.begin(), s.held.end(), Later{});
    s.max_held = std::max(s.max_held, s.held.size());
    return 0;
}

void release_due(State& s, std::uint64_t now) {
    while (!s.held.empty() && s.held.front().due_us <= now) {
        std::pop_heap(s.held.begin(), s.held.end(), Later{});
        accept_packet(s, s.held.back().id);
        s.held.pop_back();
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::fprintf(stderr, "usage: nfq-delayer QUEUE MAX_DELAY_US [SEED]\n");
        return 2;
    }
    const auto queue_num = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
    State s;
    s.max_delay_us = std::strtoull(argv[2], nullptr, 10);
    s.rng = argc == 4 ? std::strtoull(argv[3], nullptr, 10) : now_us();
    if (s.rng == 0) s.rng = 0x9e3779b97f4a7c15ull;
    s.held.reserve(kMaxHeld);

    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);

    nfq_handle* h = nfq_open();
    if (h == nullptr) {
        std::perror("nfq_open");
        return 1;
    }
    s.queue = nfq_create_queue(h, queue_num, &on_packet, &s);
    if (s.queue == nullptr) {
        std::perror("nfq_create_queue");
        return 1;
    }
    // Only the metadata (the packet id) comes to user space; the verdict leaves the packet as is.
    if (nfq_set_mode(s.queue, NFQNL_COPY_META, 0) < 0 || nfq_set_queue_maxlen(s.queue, 8192) < 0) {
        std::perror("nfq_set_mode/maxlen");
        return 1;
    }
    const int fd = nfq_fd(h);
    std::printf("ready\n");
    std::fflush(stdout);

    std::vector<char> buf(65536);
    while (g_stop == 0) {
        std::uint64_t now = now_us();
        release_due(s, now);
        timespec timeout{0, 100'000'000};  // wake up now and then to see g_stop
        if (!s.held.empty()) {
            const std::uint64_t wait = s.held.front().due_us - now;
            timeout = timespec{static_cast<time_t>(wait / 1'000'000u), static_cast<long>(wait % 1'000'000u) * 1000};
        }
        pollfd pfd{fd, POLLIN, 0};
        const int ready = ppoll(&pfd, 1, &timeout, nullptr);
        if (ready < 0 && errno != EINTR) {
            std::perror("ppoll");
            break;
        }
        if (ready <= 0) continue;
        for (int i = 0; i < 256; ++i) {  // drain what is queued, within reason
            const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n < 0) {
                // ENOBUFS: the kernel dropped messages for us (a loss, TCP recovers).
                if (errno != EAGAIN && errno != EINTR && errno != ENOBUFS) std::perror("recv");
                break;
            }
            nfq_handle_packet(h, buf.data(), static_cast<int>(n));
        }
    }
    release_due(s, UINT64_MAX);
    nfq_destroy_queue(s.queue);
    nfq_close(h);
    std::fprintf(stderr, "packets %llu delayed %llu max_held %zu\n", static_cast<unsigned long long>(s.packets),
                 static_cast<unsigned long long>(s.delayed), s.max_held);
    return 0;
}
