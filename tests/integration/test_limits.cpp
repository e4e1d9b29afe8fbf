// Limits and abusive peers: each affects only its own connection.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "client.hpp"
#include "configs.hpp"
#include "daemon_process.hpp"
#include "test_catch.hpp"
#include "tools/payload.hpp"

using namespace tcpecho;
using namespace tcpecho::test;
using namespace std::chrono_literals;

namespace {

// A connection that keeps proving it is served.
void expect_echo(int fd, const std::string& what) {
    send_all(fd, what);
    REQUIRE(recv_string(fd, what.size(), 5s) == what);
}

}  // namespace

TEST_CASE("an oversized length header closes only that connection, without allocating", "[limits][max_frame]") {
    DaemonProcess d(config(listener("length", "length", "max_frame = \"1MiB\"") + listener("line", "line",
                                                                                            "max_frame = 1000")));
    UniqueFd good = connect_to(d.port("length"));
    expect_echo(good.get(), length_frame("before"));
    long rss_before = d.rss_kib();

    SECTION("0xFFFFFFFF header") {
        UniqueFd bad = connect_to(d.port("length"));
        send_all(bad.get(), std::string("\xff\xff\xff\xff", 4));
        REQUIRE(closed_by_peer_within(bad.get(), 5s));
        REQUIRE(d.wait_for_log("frame too large", 2s));
    }
    SECTION("max_frame + 1 header") {
        UniqueFd bad = connect_to(d.port("length"));
        send_all(bad.get(), std::string("\x00\x10\x00\x01", 4));
        REQUIRE(closed_by_peer_within(bad.get(), 5s));
    }
    SECTION("a line longer than max_frame, before its newline arrives") {
        UniqueFd good_line = connect_to(d.port("line"));
        UniqueFd bad = connect_to(d.port("line"));
        send_all(bad.get(), std::string(1001, 'x'));
        REQUIRE(closed_by_peer_within(bad.get(), 5s));
        expect_echo(good_line.get(), std::string(1000, 'y') + "\n");  // exactly max_frame is fine
    }
    REQUIRE(d.counter("frames_too_large") == 1);
    REQUIRE(d.rss_kib() - rss_before < 2048);  // nothing of the claimed size was allocated
    expect_echo(good.get(), length_frame("after"));
}

TEST_CASE("whole frames before an oversized one are still echoed", "[limits][max_frame]") {
    DaemonProcess d(config(listener("line", "line", "max_frame = 1000")));
    UniqueFd c = connect_to(d.port("line"));
    send_all(c.get(), "ok-1\nok-2\n" + std::string(1001, 'x'));
    std::string got;
    REQUIRE(read_to_eof(c.get(), got, 5s));
    REQUIRE(got == "ok-1\nok-2\n");
}

TEST_CASE("a peer that sends but never reads is paused; memory stays bounded; it resumes", "[limits][backpressure]") {
    DaemonProcess d(config(listener("raw", "raw")));  // default watermarks: 1 MiB / 256 KiB
    UniqueFd other = connect_to(d.port("raw"));
    expect_echo(other.get(), "warm-up");
    long rss_before = d.rss_kib();

    UniqueFd slow = connect_to(d.port("raw"));
    ::fcntl(slow.get(), F_SETFL, O_NONBLOCK);
    constexpr std::uint64_t kTotal = 200ULL << 20;
    PayloadStream tx(42);
    std::vector<std::byte> chunk(64 * 1024);
    std::uint64_t sent = 0;
    auto last_progress = std::chrono::steady_clock::now();
    auto deadline = last_progress + 60s;
    // Send until the daemon stops taking bytes for a second (it paused reading), or 200 MB.
    while (sent < kTotal && std::chrono::steady_clock::now() - last_progress < 1s &&
           std::chrono::steady_clock::now() < deadline) {
        PayloadStream probe = tx;
        probe.fill(chunk.data(), chunk.size());
        ssize_t w = ::send(slow.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (w > 0) {
            tx.fill(chunk.data(), static_cast<std::size_t>(w));  // advance by what was taken
            sent += static_cast<std::uint64_t>(w);
            last_progress = std::chrono::steady_clock::now();
        } else {
            std::this_thread::sleep_for(10ms);
        }
    }
    INFO("sent before the stall: " << sent);
    REQUIRE(sent < kTotal);  // the daemon stopped reading
    long growth = d.rss_kib() - rss_before;
    INFO("daemon RSS growth: " << growth << " KiB");
    REQUIRE(growth < 1024 + 4 * 1024);  // high watermark + a few MiB
    REQUIRE(d.counter("read_pauses") >= 1);
    expect_echo(other.get(), "still served");  // everyone else keeps being served

    // Now read: the daemon resumes, and the whole stream comes back intact.
    ::fcntl(slow.get(), F_SETFL, 0);
    PayloadStream rx(42);
    std::uint64_t verified = 0;
    std::vector<std::byte> in(256 * 1024);
    while (verified < sent) {
        REQUIRE(readable_within(slow.get(), 10s));
        ssize_t r = ::recv(slow.get(), in.data(), std::min<std::uint64_t>(in.size(), sent - verified), 0);
        REQUIRE(r > 0);
        REQUIRE(rx.verify(in.data(), static_cast<std::size_t>(r)) == static_cast<std::size_t>(r));
        verified += static_cast<std::uint64_t>(r);
    }
    REQUIRE(verified == sent);
}

TEST_CASE("max_connections closes the excess at once; the others are unaffected", "[limits][max_connections]") {
    DaemonProcess d(config(listener("raw", "raw", "max_connections = 3")));
    std::vector<UniqueFd> conns;
    for (int i = 0; i < 3; ++i) {
        conns.push_back(connect_to(d.port("raw")));
        expect_echo(conns.back().get(), "hello " + std::to_string(i));
    }
    UniqueFd excess = connect_to(d.port("raw"));
    REQUIRE(closed_by_peer_within(excess.get(), 5s));
    REQUIRE(d.wait_for_log("max_connections=3", 2s));
    for (auto& c : conns) expect_echo(c.get(), "still here");
    REQUIRE(d.counter("connections_rejected") == 1);

    conns.pop_back();  // one leaves: a new one is served
    bool served = false;
    for (int attempt = 0; attempt < 50 && !served; ++attempt) {
        UniqueFd again = connect_to(d.port("raw"));
        send_all(again.get(), "x");
        served = recv_string(again.get(), 1, 1s) == "x";
        if (!served) std::this_thread::sleep_for(50ms);
    }
    REQUIRE(served);
}

TEST_CASE("idle_timeout closes quiet connections and spares active ones", "[limits][idle]") {
    DaemonProcess d(config(listener("raw", "raw", "idle_timeout = 1")));
    UniqueFd quiet = connect_to(d.port("raw"));
    UniqueFd busy = connect_to(d.port("raw"));
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 8; ++i) {  // 2.4 s of activity, every 300 ms
        expect_echo(busy.get(), "tick");
        std::this_thread::sleep_for(300ms);
    }
    REQUIRE(closed_by_peer_within(quiet.get(), 3s));
    auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(took < 5s);
    expect_echo(busy.get(), "alive");
    REQUIRE(d.counter("idle_timeouts") == 1);
}

TEST_CASE("each listener's own idle_timeout applies, whichever connection came first", "[limits][idle]") {
    DaemonProcess d(config(listener("slow", "raw", "idle_timeout = 60") + listener("fast", "raw", "idle_timeout = 1"),
                           "", 1));  // one worker: both connections share its idle timer
    UniqueFd slow = connect_to(d.port("slow"));
    expect_echo(slow.get(), "armed first");  // arms the worker's idle timer for 60 s
    UniqueFd fast = connect_to(d.port("fast"));
    expect_echo(fast.get(), "due sooner");
    REQUIRE(closed_by_peer_within(fast.get(), 3s));
    expect_echo(slow.get(), "still open");
}

TEST_CASE("out of file descriptors: no busy loop, existing connections served, later ones too", "[limits][emfile]") {
    // 32 fds: the daemon's own (std streams, epoll sets, eventfds, listener, reserve) use about
    // 15, leaving room for a handful of connections.
    DaemonProcess d(DaemonOptions{config(listener("raw", "raw")), 32u, {}, false});
    std::vector<UniqueFd> held;
    for (int i = 0; i < 60; ++i) held.push_back(connect_to(d.port("raw")));
    // Give the daemon time to accept what it can and shed the rest.
    REQUIRE(d.wait_for_log("out of file descriptors", 5s));
    std::this_thread::sleep_for(300ms);
    long cpu_before = d.cpu_ticks();
    std::this_thread::sleep_for(1s);
    long cpu_used = d.cpu_ticks() - cpu_before;
    INFO("daemon CPU ticks in 1 s while out of fds: " << cpu_used);
    REQUIRE(cpu_used <= 10);  // 100 ticks = one busy core

    // Every connection is either served or was closed at once: none is left hanging.
    int served = 0;
    int closed = 0;
    for (auto& c : held) {
        if (readable_within(c.get(), 0ms)) {
            REQUIRE(closed_by_peer_within(c.get(), 1s));
            ++closed;
            continue;
        }
        send_all(c.get(), "ping");
        REQUIRE(recv_string(c.get(), 4, 2s) == "ping");
        ++served;
    }
    INFO("connections served " << served << ", closed " << closed);
    REQUIRE(served >= 5);
    REQUIRE(served + closed == 60);
    REQUIRE(d.counter("accept_fd_exhausted") >= 1);

    held.clear();  // fds free up: new connections are served again
    bool ok = false;
    for (int attempt = 0; attempt < 50 && !ok; ++attempt) {
        std::this_thread::sleep_for(50ms);
        UniqueFd c = connect_to(d.port("raw"));
        send_all(c.get(), "back");
        ok = recv_string(c.get(), 4, 1s) == "back";
    }
    REQUIRE(ok);
}
