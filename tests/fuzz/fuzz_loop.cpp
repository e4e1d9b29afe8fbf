// libFuzzer target: a real tcpechod worker loop serving one connection over a socketpair.
//
// One tcpecho::Worker (its own thread, libev loop and ET epoll set, exactly as in tcpechod)
// serves the TCP listeners of kConfig, started once per process. Per input, one end of a
// socketpair(AF_UNIX, SOCK_STREAM) is handed to it with Worker::request_adopt as a
// connection of the listener the input picks; this thread writes the stream into the other end
// in input-chosen chunks, half-closes, and reads until EOF. What comes back must be what the
// framer says: raw, every byte; framed, every complete frame up to the first too-large one
// (after which the daemon closes) and nothing of an incomplete frame at EOF. Then the worker
// must have closed the connection, and its counters must agree (frames echoed, too-large
// frames, incomplete frames at EOF, bytes sent, no connection errors).
//
// Input: a 3-byte header, then the stream.
//   byte 0  listener: byte % kListeners (index into kConfig's [[listen]] tables)
//   byte 1  bits 0-2: largest chunk per write (1, 2, 3, 7, 16, 64, 512 or 4096 bytes; at
//           least 1/256 of the stream, as sent); bit 3: after each of the first 64 chunks wait until the
//           worker has read it (SIOCOUTQ = 0), so each is a separate recv() in the daemon;
//           bit 4: lazy reader (read the echo only when a write would block); bit 5: small
//           socket buffers (the smallest SO_SNDBUF, ~4.5 KiB, on both ends); bits 6-7: the
//           stream is sent 1, 2, 8 or 32 times over. Together they make the echo back up, so
//           the daemon's sends block and it pauses reading at output_high_watermark.
//   byte 2  seeds the chunk sizes (with byte 1)
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "daemon/tcp/accept_gate.hpp"
#include "daemon/service/config_loader.hpp"
#include "lib/framer.hpp"
#include "daemon/service/listener_table.hpp"
#include "daemon/base/log.hpp"
#include "daemon/worker.hpp"
#include "fuzz_common.hpp"

namespace {

using tcpecho::FramingMode;
using tcpecho::FrameResult;

// Small limits, so -malloc_limit_mb=64 holds and inputs of a few KiB reach every limit:
// too-large frames in both framed modes, and backpressure (output_high_watermark = 1 KiB).
constexpr std::string_view kConfig = R"(workers = 1
log_level = "err"
[limits]
max_frame = 4096
idle_timeout = 60
[[listen]]
name = "raw"
port = 0
[[listen]]
name = "raw-hw1k"
port = 0
output_high_watermark = 1024
output_low_watermark = 0
[[listen]]
name = "fixed1"
port = 0
mode = "fixed"
frame_size = 1
[[listen]]
name = "fixed7"
port = 0
mode = "fixed"
frame_size = 7
[[listen]]
name = "fixed600"
port = 0
mode = "fixed"
frame_size = 600
[[listen]]
name = "length"
port = 0
mode = "length"
[[listen]]
name = "length16"
port = 0
mode = "length"
max_frame = 16
[[listen]]
name = "length-hw1k"
port = 0
mode = "length"
output_high_watermark = 1024
output_low_watermark = 512
[[listen]]
name = "line"
port = 0
mode = "line"
[[listen]]
name = "line16"
port = 0
mode = "line"
max_frame = 16
)";

constexpr int kDeadlineMs = 5000;
constexpr std::size_t kSyncedChunks = 64;
// Bits of the input's byte 1 (see above).
constexpr std::uint8_t kSync = 0x08;
constexpr std::uint8_t kLazyReader = 0x10;
constexpr std::uint8_t kSmallBuffers = 0x20;  // per input: the echo and the close must be done by then

std::uint64_t now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

// The daemon's side, built once: the listeners (bound to 127.0.0.1, port 0; nobody connects)
// and one started worker. Stopped and joined at exit.
struct Daemon {
    tcpecho::Config config;
    std::unique_ptr<tcpecho::ListenerTable> table;
    tcpecho::AcceptGate gate;
    std::unique_ptr<tcpecho::Worker> worker;
    std::uint64_t adopted = 0;  // connections handed to the worker so far

    Daemon() {
        ::signal(SIGPIPE, SIG_IGN);
        tcpecho::log_init("fuzz_loop");
        config = tcpecho::parse_config(kConfig, "fuzz_loop.toml");
        const char* level = std::getenv("TCPECHO_FUZZ_LOG_LEVEL");  // e.g. "debug" while debugging
        auto parsed = tcpecho::parse_log_level(level != nullptr ? level : "err");
        tcpecho::log_set_level(parsed ? *parsed : tcpecho::LogLevel::Err);
        table = std::make_unique<tcpecho::ListenerTable>(std::vector<tcpecho::InheritedSocket>{}, 1U);
        table->commit(table->build(config));
        const auto& set = *table->current();
        FUZZ_CHECK(set.tcp.size() == config.listeners.size());
        for (std::size_t i = 0; i < set.tcp.size(); ++i) FUZZ_CHECK(set.tcp[i]->config().name == config.listeners[i].name);
        worker = std::make_unique<tcpecho::Worker>(0, table->current(), gate, [] {});
        worker->start();
    }
    ~Daemon() {
        worker->request_force_close();
        worker->join();
        if (std::getenv("TCPECHO_FUZZ_STATS") != nullptr) {  // what the run exercised
            tcpecho::StatsSnapshot s;
            s.accumulate(worker->stats());
            std::fprintf(stderr, "fuzz_loop worker counters: %s\n", s.format().c_str());
        }
    }
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
};

Daemon& daemon_instance() {
    static Daemon d;
    return d;
}

// What the daemon must send back for `stream` on a listener with `lc`'s mode and limits, and
// whether it must close early (a too-large frame).
struct Expected {
    std::vector<std::uint8_t> echo;
    bool closes_early = false;
    std::uint64_t frames = 0;    // framed modes: whole frames (before a too-large one)
    std::uint64_t leftover = 0;  // framed modes: bytes of an incomplete frame at EOF
};

Expected expected_echo(const tcpecho::ListenerConfig& lc, std::span<const std::uint8_t> stream) {
    Expected e;
    if (lc.mode == FramingMode::Raw) {
        e.echo.assign(stream.begin(), stream.end());
        return e;
    }
    const tcpecho::Framer framer(lc.mode, lc.frame_size, lc.limits.max_frame);
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(stream.data()), stream.size());
    std::size_t offset = 0;
    std::size_t scanned = 0;
    for (;;) {
        FrameResult r = framer.extract(bytes.subspan(offset), scanned);
        if (r.status == FrameResult::Status::Complete) {
            offset += static_cast<std::size_t>(r.size);
            ++e.frames;
            continue;
        }
        e.closes_early = r.status == FrameResult::Status::TooLarge;
        if (!e.closes_early) e.leftover = stream.size() - offset;
        break;
    }
    e.echo.assign(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(offset));
    return e;
}

struct Peer {
    Peer(int peer_fd, std::span<const std::uint8_t> input) noexcept : fd(peer_fd), stream(input) {}
    int fd;
    std::span<const std::uint8_t> stream;
    std::size_t written = 0;
    bool write_done = false;
    bool write_failed = false;  // the daemon closed before taking everything (EPIPE)
    std::vector<std::uint8_t> echo;
    bool eof = false;
    bool reset = false;  // ECONNRESET after the echo: the daemon closed with our input unread
};

// Reads what is there; returns whether anything (data or EOF) came.
bool read_some(Peer& p) {
    bool progress = false;
    for (;;) {
        std::uint8_t buf[65536];
        ssize_t n = ::recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            p.echo.insert(p.echo.end(), buf, buf + n);
            progress = true;
            continue;
        }
        if (n == 0) {
            p.eof = true;
            return true;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return progress;
        if (errno == ECONNRESET) {
            // AF_UNIX: closing a socket with unread input resets the peer, after the data
            // queued for it (unix_release_sock). Only a too-large frame may do that.
            p.reset = true;
            p.eof = true;
            return true;
        }
        std::fprintf(stderr, "recv: %s\n", std::strerror(errno));
        tcpecho::fuzz::check_failed(__FILE__, __LINE__, "recv failed");
    }
}

void run_connection(Peer& p, std::uint8_t flags, std::uint8_t seed) {
    static constexpr std::size_t kLargestChunk[8] = {1, 2, 3, 7, 16, 64, 512, 4096};
    const std::size_t largest = kLargestChunk[flags & 7U];
    const bool sync = (flags & kSync) != 0;
    const bool lazy = (flags & kLazyReader) != 0;
    tcpecho::fuzz::Rng rng((std::uint64_t{flags} << 8) | seed);
    std::size_t chunk_left = 0;  // of the chunk being written
    bool await_read = false;     // sync: the last chunk is written, wait until the daemon read it
    std::size_t synced = 0;
    if (p.stream.empty()) {
        ::shutdown(p.fd, SHUT_WR);
        p.write_done = true;
    }
    const std::uint64_t deadline = now_ms() + kDeadlineMs;
    while (!p.eof) {
        FUZZ_CHECK(now_ms() < deadline);  // the daemon neither echoed everything nor closed
        bool wrote = false;
        bool blocked = false;
        if (!p.write_done && !await_read) {
            if (chunk_left == 0) {
                // At most ~256 chunks, the first kSyncedChunks of them synced: a thread handoff
                // per chunk costs ~0.1 ms under ASan, and exec/s is what finds bugs.
                std::size_t n = std::max(1 + rng.below(largest), p.stream.size() / 256);
                chunk_left = std::min(p.stream.size() - p.written, n);
            }
            ssize_t n = ::send(p.fd, p.stream.data() + p.written, chunk_left, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                p.written += static_cast<std::size_t>(n);
                chunk_left -= static_cast<std::size_t>(n);
                wrote = true;
                if (chunk_left == 0 && sync && synced < kSyncedChunks) {
                    await_read = true;
                    ++synced;
                }
                if (p.written == p.stream.size()) {
                    ::shutdown(p.fd, SHUT_WR);
                    p.write_done = true;
                }
            } else if (n < 0 && errno == EAGAIN) {
                blocked = true;
            } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
                p.write_done = true;
                p.write_failed = true;
            } else if (!(n < 0 && errno == EINTR)) {
                std::fprintf(stderr, "send: %s\n", std::strerror(errno));
                tcpecho::fuzz::check_failed(__FILE__, __LINE__, "send failed");
            }
        }
        bool read_done = false;
        if (await_read) {
            int queued = 0;
            FUZZ_CHECK(::ioctl(p.fd, SIOCOUTQ, &queued) == 0);
            read_done = queued == 0;
            if (read_done) await_read = false;
        }
        bool got = false;
        if (!lazy || !wrote) got = read_some(p);
        if (p.eof || got || read_done) continue;
        // Poll only when there is nothing to write now.
        if (!p.write_done && !await_read && !blocked) continue;
        pollfd pfd{p.fd, POLLIN, 0};
        if (blocked) pfd.events |= POLLOUT;
        // Waiting for the daemon to read a chunk has no event of its own: poll briefly.
        ::poll(&pfd, 1, await_read ? 1 : 100);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Daemon& d = daemon_instance();
    tcpecho::fuzz::ByteReader in(data, size);
    const std::size_t index = in.u8() % d.config.listeners.size();
    const std::uint8_t flags = in.u8();
    const std::uint8_t seed = in.u8();
    const tcpecho::ListenerConfig& lc = d.config.listeners[index];
    static constexpr std::size_t kRepeat[4] = {1, 2, 8, 32};
    std::vector<std::uint8_t> repeated;
    for (std::size_t i = 0; i < kRepeat[flags >> 6]; ++i) repeated.insert(repeated.end(), in.rest(), in.rest() + in.rest_size());
    std::span<const std::uint8_t> stream(repeated);
    const Expected want = expected_echo(lc, stream);

    const tcpecho::WorkerStats& stats = d.worker->stats();
    const std::uint64_t frames_before = stats.frames_echoed.get();
    const std::uint64_t too_large_before = stats.frames_too_large.get();
    const std::uint64_t incomplete_before = stats.incomplete_frames_at_eof.get();
    const std::uint64_t errors_before = stats.connection_errors.get();
    const std::uint64_t sent_before = stats.bytes_sent.get();

    int sv[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(::fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);  // the daemon's end, as accept4() gives it
    if ((flags & kSmallBuffers) != 0) {
        // AF_UNIX stream: what a sender may have unread in its peer's queue is bounded by the
        // sender's SO_SNDBUF (the kernel doubles the value and enforces a minimum).
        int bytes = 1;  // raised to the minimum
        for (int fd : sv) FUZZ_CHECK(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) == 0);
    }
    d.worker->request_adopt(index, sv[0]);
    ++d.adopted;
    Peer p(sv[1], stream);
    run_connection(p, flags, seed);
    ::close(sv[1]);

    if (!want.closes_early) {
        FUZZ_CHECK(!p.write_failed && !p.reset);
        FUZZ_CHECK(p.echo == want.echo);
    } else {
        // Whole frames ahead of the too-large one are echoed "as far as the socket takes them
        // now": all of them while the socket has room, a prefix once the output backed up.
        FUZZ_CHECK(p.echo.size() <= want.echo.size());
        FUZZ_CHECK(std::equal(p.echo.begin(), p.echo.end(), want.echo.begin()));
        if (want.echo.size() <= 32 * 1024 && (flags & (kLazyReader | kSmallBuffers)) == 0) {
            FUZZ_CHECK(p.echo == want.echo);
        }
    }

    // The worker must be done with the connection (closed, buffer released) before the next one.
    const std::uint64_t deadline = now_ms() + kDeadlineMs;
    while (stats.connections_closed.get() < d.adopted) {
        FUZZ_CHECK(now_ms() < deadline);
        ::usleep(50);
    }
    FUZZ_CHECK(stats.connections_closed.get() == d.adopted);
    FUZZ_CHECK(stats.connections_accepted.get() == d.adopted);
    // Its counters tell the same story. (The worker writes them before it counts the close;
    // relaxed atomics, but x86 keeps stores in order and the loop above synchronises enough
    // for a test.)
    FUZZ_CHECK(stats.connection_errors.get() == errors_before);
    FUZZ_CHECK(stats.frames_too_large.get() - too_large_before == (want.closes_early ? 1U : 0U));
    if (lc.mode != FramingMode::Raw) {
        FUZZ_CHECK(stats.frames_echoed.get() - frames_before == want.frames);
        FUZZ_CHECK(stats.incomplete_frames_at_eof.get() - incomplete_before == (want.leftover > 0 ? 1U : 0U));
    }
    if (!want.closes_early) FUZZ_CHECK(stats.bytes_sent.get() - sent_before == p.echo.size());
    return 0;
}
