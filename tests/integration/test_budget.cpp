// Resources a peer can pin: buffer memory over all connections (max_buffer_memory) and
// connections whose peer stopped acknowledging (send_timeout). Both on loopback: a window the
// peer keeps shut is what a vanished peer looks like to the sender here (zero-window probes
// instead of retransmissions; TCP_USER_TIMEOUT ends both). The blackhole over a real path is
// in tests/faults.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "client.hpp"
#include "configs.hpp"
#include "daemon_process.hpp"
#include "test_catch.hpp"

using namespace tcpecho;
using namespace tcpecho::test;
using namespace std::chrono_literals;

namespace {

// Under AddressSanitizer the daemon's RSS is not its live memory: shadow memory adds an eighth
// of everything touched, and freed buffers stay resident in the quarantine (measured: 10956
// KiB growth at an 8 MiB budget). There the RSS bound is reported, not checked; the normal
// build checks it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsLiveMemory = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kRssIsLiveMemory = false;
#else
constexpr bool kRssIsLiveMemory = true;
#endif
#else
constexpr bool kRssIsLiveMemory = true;
#endif

// The daemon's RSS growth over `before` stays within the budget plus a little for everything
// else (2 MiB).
void check_rss_within_budget(const DaemonProcess& d, long before, long budget_kib) {
    const long growth = d.rss_kib() - before;
    if (kRssIsLiveMemory) {
        INFO("daemon RSS growth at the budget: " << growth << " KiB");
        REQUIRE(growth <= budget_kib + 2 * 1024);
    } else {
        WARN("sanitizer build, RSS not checked: daemon RSS growth at the budget " << growth << " KiB");
    }
}

// Connects with a small receive buffer (set before connect, so the window is small from the
// start) and sends until the daemon stops taking bytes for `quiet` or `limit` bytes went out.
// Never reads. Returns the bytes sent.
std::uint64_t send_without_reading(int fd, std::uint64_t limit, std::chrono::milliseconds quiet) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    std::string chunk(64 * 1024, 'z');
    std::uint64_t sent = 0;
    auto last_progress = std::chrono::steady_clock::now();
    const auto deadline = last_progress + 30s;
    while (sent < limit && std::chrono::steady_clock::now() - last_progress < quiet &&
           std::chrono::steady_clock::now() < deadline) {
        ssize_t w = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (w > 0) {
            sent += static_cast<std::uint64_t>(w);
            last_progress = std::chrono::steady_clock::now();
        } else {
            std::this_thread::sleep_for(5ms);
        }
    }
    return sent;
}

UniqueFd connect_small_window(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    UniqueFd owned(fd);
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    return owned;
}

// The worker logs and counts a close just before it closes the fd: poll, briefly.
bool fd_count_becomes(const DaemonProcess& d, int expected) {
    for (int i = 0; i < 100; ++i) {
        if (d.fd_count() == expected) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

void expect_echo(int fd, const std::string& what, std::chrono::milliseconds timeout = 5s) {
    send_all(fd, what);
    REQUIRE(recv_string(fd, what.size(), timeout) == what);
}

}  // namespace

TEST_CASE("send_timeout reclaims a connection whose peer stopped taking its echo", "[budget][send_timeout]") {
    DaemonProcess d(config(listener("short", "raw", "send_timeout = \"1s\"") +
                           listener("off", "raw", "send_timeout = 0")));
    const int fds_before = d.fd_count();
    UniqueFd stuck = connect_small_window(d.port("short"));
    UniqueFd patient = connect_small_window(d.port("off"));
    REQUIRE(send_without_reading(stuck.get(), 64ULL << 20, 500ms) > 0);
    REQUIRE(send_without_reading(patient.get(), 64ULL << 20, 500ms) > 0);
    auto start = std::chrono::steady_clock::now();
    REQUIRE(d.wait_for_log("send timeout", 15s));
    auto took = std::chrono::steady_clock::now() - start;
    INFO("reclaimed after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    REQUIRE(took < 10s);  // 1 s plus the zero-window probe schedule (200 ms doubling)
    REQUIRE(d.counter("send_timeouts") == 1);
    REQUIRE(fd_count_becomes(d, fds_before + 1));  // only the patient one is left
    // The connection without a send_timeout is still there, and its echo is intact once read.
    std::this_thread::sleep_for(1s);
    REQUIRE(d.counter("send_timeouts") == 1);
    ::fcntl(patient.get(), F_SETFL, 0);
    std::string got = recv_string(patient.get(), 1000, 5s);
    REQUIRE(got == std::string(1000, 'z'));
    UniqueFd fresh = connect_to(d.port("short"));
    expect_echo(fresh.get(), "others are served");
}

TEST_CASE("max_buffer_memory: peers not reading their echo are held at the budget, memory stays bounded, and it "
          "recovers",
          "[budget][max_buffer_memory]") {
    // 8 MiB over all connections; each stuck peer may make the daemon hold about 1 MiB
    // (output_high_watermark), so a dozen of them reach the budget.
    // The budget counts the pages of a buffer that recv() wrote, which is what becomes
    // resident; meson's MALLOC_PERTURB_ makes malloc fill every new 1 MiB buffer, all pages
    // resident at once (measured: 10.3-11.3 MiB growth). The daemon runs without it here.
    //
    // Whether a new connection is served meanwhile is not checked here: the kernel's send
    // buffers of the stuck connections keep growing for a while (autotuning, as ACKs of the
    // zero-window probes come in), so the daemon's buffers do drain into them, and at 7/8 of
    // the budget it rightly reads and accepts again (measured under load: down to 7 of 8 MiB
    // within a second, bytes_sent +4.3 MB with no peer reading). The next test holds the
    // budget with what nothing can drain.
    ::setenv("MALLOC_PERTURB_", "0", 1);
    DaemonProcess d(config(listener("raw", "raw"), "max_buffer_memory = \"8MiB\""));
    UniqueFd warm = connect_to(d.port("raw"));
    expect_echo(warm.get(), "warm-up");
    const long rss_before = d.rss_kib();
    const int fds_before = d.fd_count();

    std::vector<UniqueFd> hogs;
    for (int i = 0; i < 16; ++i) {
        hogs.push_back(connect_small_window(d.port("raw")));
        send_without_reading(hogs.back().get(), 3ULL << 20, 300ms);
    }
    REQUIRE(d.wait_for_log("max_buffer_memory reached", 5s));
    REQUIRE(d.counter("memory_read_pauses") >= 1);
    REQUIRE(d.counter("memory_accept_pauses") >= 1);
    check_rss_within_budget(d, rss_before, 8 * 1024);

    // The load goes away: everyone is served again, new connections too.
    for (auto& h : hogs) close_with_reset(h);
    REQUIRE(d.wait_for_log("reading (", 5s));
    expect_echo(warm.get(), "served again");
    UniqueFd fresh = connect_to(d.port("raw"));
    expect_echo(fresh.get(), "new connections too");
    fresh.reset();
    REQUIRE(fd_count_becomes(d, fds_before));  // every hog's fd is gone again
}

TEST_CASE("max_buffer_memory: at the budget new connections wait in the backlog, on every worker, until memory is "
          "freed",
          "[budget][max_buffer_memory]") {
    // Partial frames hold the budget: a 4 MiB length-mode frame of which 3 MiB were sent is
    // kept whole until it completes, and nothing can drain it (there is no echo yet). Three
    // such peers fill 8 MiB for good. Two workers: the pause must hold for both, also when a
    // read gives a page or two back (integration-budget failed one run in a few when the
    // other worker saw a free page and accepted: a flake once).
    ::setenv("MALLOC_PERTURB_", "0", 1);
    DaemonProcess d(config(listener("raw", "raw") + listener("length", "length", "max_frame = \"4MiB\""),
                           "max_buffer_memory = \"8MiB\""));
    UniqueFd warm = connect_to(d.port("raw"));
    expect_echo(warm.get(), "warm-up");
    const long rss_before = d.rss_kib();
    const int fds_before = d.fd_count();

    std::vector<UniqueFd> hogs;
    for (int i = 0; i < 5; ++i) {
        hogs.push_back(connect_to(d.port("length")));
        send_all(hogs.back().get(), length_frame(std::string(4 << 20, 'f')).substr(0, 4));  // the header
        send_without_reading(hogs.back().get(), 3ULL << 20, 300ms);  // 3 of its 4 MiB
    }
    REQUIRE(d.wait_for_log("max_buffer_memory reached", 5s));
    REQUIRE(d.counter("memory_read_pauses") >= 1);
    check_rss_within_budget(d, rss_before, 8 * 1024);

    // New connections are not served while the budget is full, whichever worker they reach.
    std::vector<UniqueFd> waiting;
    for (int i = 0; i < 4; ++i) {
        waiting.push_back(connect_to(d.port("raw")));  // completes in the kernel's backlog
        send_all(waiting.back().get(), "queued");
    }
    for (auto& w : waiting) {
        if (readable_within(w.get(), 250ms)) {
            FAIL("a connection was served while the budget was full; daemon log:\n" << d.log_text());
        }
    }
    REQUIRE(d.counter("memory_accept_pauses") >= 1);
    check_rss_within_budget(d, rss_before, 8 * 1024);

    // The load goes away: the waiting connections are accepted and served, and so are new ones.
    for (auto& h : hogs) close_with_reset(h);
    for (auto& w : waiting) REQUIRE(recv_string(w.get(), 6, 5s) == "queued");
    REQUIRE(d.wait_for_log("reading (", 5s));
    expect_echo(warm.get(), "served again");
    UniqueFd fresh = connect_to(d.port("length"));
    expect_echo(fresh.get(), length_frame("new connections too"));
    fresh.reset();
    waiting.clear();
    REQUIRE(fd_count_becomes(d, fds_before));  // every hog's fd is gone again
}

namespace {

// Polls until `name` reaches at least `want` (the daemon counts as it reads).
bool counter_reaches(DaemonProcess& d, const char* name, std::uint64_t want) {
    for (int i = 0; i < 250; ++i) {
        if (d.counter(name) >= want) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

}  // namespace

TEST_CASE("max_buffer_memory: peers that reset while paused for memory give their memory back",
          "[budget][max_buffer_memory]") {
    // Every holder of the budget paused for memory, then reset by its peer. A paused
    // connection does not read, so without asking the socket (EPOLLERR, SO_ERROR) it would
    // keep its partial frame until idle_timeout, and the budget would never drain: nobody
    // would be accepted again (found in review). One worker, so the order is known.
    ::setenv("MALLOC_PERTURB_", "0", 1);
    DaemonProcess d(config(listener("raw", "raw") + listener("length", "length", "max_frame = 4194300"),
                           "max_buffer_memory = \"4MiB\"", 1));
    const std::string header = length_frame(std::string(4194300, 'f')).substr(0, 4);
    // A: exactly 3 MiB of a frame (a page boundary: it has no charged room left), all read.
    UniqueFd a = connect_to(d.port("length"));
    send_all(a.get(), header);
    send_all(a.get(), std::string((3U << 20) - 4, 'f'));  // within the budget: all of it is read
    REQUIRE(counter_reaches(d, "bytes_received", 3ULL << 20));
    // B: 2 MiB more than the budget has room for: read up to the budget, then paused.
    UniqueFd b = connect_to(d.port("length"));
    send_all(b.get(), header);
    send_without_reading(b.get(), 2ULL << 20, 300ms);
    REQUIRE(d.wait_for_log("max_buffer_memory reached", 5s));
    REQUIRE(counter_reaches(d, "memory_read_pauses", 1));
    // A sends one byte more: it needs a new page, and is paused too.
    const std::uint64_t pauses = d.counter("memory_read_pauses");
    send_all(a.get(), "f");
    REQUIRE(counter_reaches(d, "memory_read_pauses", pauses + 1));
    UniqueFd waiting = connect_to(d.port("raw"));
    send_all(waiting.get(), "queued");
    REQUIRE_FALSE(readable_within(waiting.get(), 300ms));
    // Both reset: their memory comes back, and the waiting connection is served.
    close_with_reset(a);
    close_with_reset(b);
    if (!readable_within(waiting.get(), 5s)) {
        FAIL("the budget did not drain after the paused peers reset; daemon log:\n" << d.log_text());
    }
    REQUIRE(recv_string(waiting.get(), 6, 1s) == "queued");
    CHECK(d.counter("connection_resets") == 2);
}
