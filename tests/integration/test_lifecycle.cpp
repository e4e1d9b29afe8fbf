// Connection and process lifecycle: half-close, reset, drain on SIGTERM, command line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "client.hpp"
#include "configs.hpp"
#include "daemon_process.hpp"
#include "test_catch.hpp"
#include "tools/payload.hpp"

using namespace tcpecho;
using namespace tcpecho::test;
using namespace std::chrono_literals;

TEST_CASE("half-close: pending data is echoed, then the daemon closes its side", "[lifecycle][half-close]") {
    DaemonProcess d(all_modes_config());
    SECTION("raw") {
        UniqueFd c = connect_to(d.port("raw"));
        std::string data(300000, 'r');
        send_all(c.get(), data);
        ::shutdown(c.get(), SHUT_WR);
        std::string got;
        REQUIRE(read_to_eof(c.get(), got, 10s));
        REQUIRE(got == data);
    }
    SECTION("length: whole frames echoed, the trailing partial frame dropped and counted") {
        UniqueFd c = connect_to(d.port("length"));
        std::string whole = length_frame("first") + length_frame("second");
        send_all(c.get(), whole + length_frame("third, cut short").substr(0, 9));
        ::shutdown(c.get(), SHUT_WR);
        std::string got;
        REQUIRE(read_to_eof(c.get(), got, 10s));
        REQUIRE(got == whole);
        REQUIRE(d.wait_for_log("half-closed inside a frame", 2s));
        REQUIRE(d.counter("incomplete_frames_at_eof") == 1);
    }
    SECTION("line") {
        UniqueFd c = connect_to(d.port("line"));
        send_all(c.get(), "one\ntwo\nthree-without-newline");
        ::shutdown(c.get(), SHUT_WR);
        std::string got;
        REQUIRE(read_to_eof(c.get(), got, 10s));
        REQUIRE(got == "one\ntwo\n");
    }
}

TEST_CASE("a reset mid-frame frees the connection; the daemon keeps serving", "[lifecycle][reset]") {
    DaemonProcess d(all_modes_config());
    UniqueFd keep = connect_to(d.port("length"));
    send_all(keep.get(), length_frame("hi"));
    REQUIRE(recv_string(keep.get(), 6, 5s) == length_frame("hi"));
    int fds_before = d.fd_count();
    for (int i = 0; i < 20; ++i) {
        UniqueFd c = connect_to(d.port("length"));
        send_all(c.get(), length_frame(std::string(100000, 'p')).substr(0, 50000));
        close_with_reset(c);
    }
    bool back = false;
    for (int i = 0; i < 100 && !back; ++i) {
        back = d.fd_count() == fds_before && d.counter("connections_active") == 1;
        if (!back) std::this_thread::sleep_for(20ms);
    }
    REQUIRE(back);
    send_all(keep.get(), length_frame("still"));
    REQUIRE(recv_string(keep.get(), 9, 5s) == length_frame("still"));
}

TEST_CASE("a reset is counted as a reset, not an error, and its log line names the peer", "[lifecycle][reset]") {
    DaemonProcess d(config(listener("raw", "raw")));
    UniqueFd c = connect_to(d.port("raw"));
    send_all(c.get(), "ping");
    REQUIRE(recv_string(c.get(), 4, 5s) == "ping");
    sockaddr_in local{};
    socklen_t len = sizeof local;
    REQUIRE(::getsockname(c.get(), reinterpret_cast<sockaddr*>(&local), &len) == 0);
    const std::string peer = "peer=127.0.0.1:" + std::to_string(ntohs(local.sin_port)) + " listener=raw";
    close_with_reset(c);
    // After the reset the kernel no longer calls the socket connected (getpeername: ENOTCONN);
    // the line must still say who it was (it once said peer=unknown).
    REQUIRE(d.wait_for_log("connection reset by peer", 5s));
    const std::string log = d.log_text();
    INFO(log);
    CHECK(log.find("info: connection reset by peer (recv: Connection reset by peer) " + peer) != std::string::npos);
    CHECK(log.find("peer=unknown") == std::string::npos);
    CHECK(d.counter("connection_resets") == 1);
    CHECK(d.counter("connection_errors") == 0);
}

TEST_CASE("SIGTERM during a transfer: it completes intact and the daemon exits 0", "[lifecycle][drain]") {
    DaemonProcess d(config(listener("raw", "raw"), "drain_timeout = 30"));
    UniqueFd idle = connect_to(d.port("raw"));  // quiet: closed by the drain, not waited for
    UniqueFd c = connect_to(d.port("raw"));
    std::atomic<bool> signalled{false};
    TransferResult r = full_duplex(c.get(), 64ULL << 20, 9, 60s, [&](std::uint64_t verified) {
        if (!signalled && verified > (8ULL << 20)) {
            signalled = true;
            d.signal(SIGTERM);
        }
    });
    INFO(r.error);
    REQUIRE(signalled);
    REQUIRE(r.ok);
    REQUIRE(closed_by_peer_within(idle.get(), 5s));
    c.reset();
    auto status = d.wait_exit(10s);
    INFO(d.log_text());
    REQUIRE(status.has_value());
    REQUIRE(*status == 0);
    REQUIRE(d.log_text().find("SIGTERM: draining") != std::string::npos);
}

TEST_CASE("drain_timeout force-closes what is left, says how many, exits 0", "[lifecycle][drain]") {
    DaemonProcess d(config(listener("length", "length"), "drain_timeout = \"500ms\""));
    UniqueFd stuck = connect_to(d.port("length"));
    send_all(stuck.get(), length_frame("never finished").substr(0, 8));  // holds a partial frame
    std::uint64_t active = 0;
    for (int i = 0; i < 100 && active != 1; ++i) {
        active = d.counter("connections_active");
        if (active != 1) std::this_thread::sleep_for(10ms);
    }
    REQUIRE(active == 1);
    auto start = std::chrono::steady_clock::now();
    d.signal(SIGTERM);
    auto status = d.wait_exit(5s);
    auto took = std::chrono::steady_clock::now() - start;
    INFO(d.log_text());
    REQUIRE(status.has_value());
    REQUIRE(*status == 0);
    REQUIRE(took < 3s);
    REQUIRE(d.log_text().find("force-closed 1 connection\n") != std::string::npos);
    REQUIRE(closed_by_peer_within(stuck.get(), 1s));
}

TEST_CASE("command line: --help, --version, --check-config and exit statuses", "[lifecycle][cli]") {
    auto [help_status, help] = run_tcpechod({"--help"});
    REQUIRE(help_status == 0);
    REQUIRE(help.find("--check-config") != std::string::npos);

    auto [version_status, version] = run_tcpechod({"--version"});
    REQUIRE(version_status == 0);
    REQUIRE(version.rfind("tcpechod ", 0) == 0);

    auto [usage_status, usage] = run_tcpechod({"--no-such-option"});
    REQUIRE(usage_status == 2);

    std::string good = write_temp_file(all_modes_config());
    auto [ok_status, ok] = run_tcpechod({"--check-config", "--config", good});
    REQUIRE(ok_status == 0);
    REQUIRE(ok.find("configuration OK (4 listeners)") != std::string::npos);
    std::string one = write_temp_file(config(listener("raw", "raw")));
    auto [one_status, one_out] = run_tcpechod({"--check-config", "--config", one});
    REQUIRE(one_status == 0);
    REQUIRE(one_out.find("configuration OK (1 listener)") != std::string::npos);  // not "1 listeners"

    std::string bad = write_temp_file("workers = 1\n[limits]\nmax_frame = 0\n");
    auto [bad_status, bad_out] = run_tcpechod({"--check-config", "--config", bad});
    REQUIRE(bad_status == 78);
    REQUIRE(bad_out.find(bad + ":3:13: limits.max_frame: value 0 is out of range (1..1073741824)") !=
            std::string::npos);

    auto [missing_status, missing] = run_tcpechod({"--check-config", "--config", "/nonexistent/tcpechod.toml"});
    REQUIRE(missing_status == 78);
    REQUIRE(missing.find("/nonexistent/tcpechod.toml: cannot open") != std::string::npos);

    auto [dump_status, dump] = run_tcpechod({"--dump-default-config"});
    REQUIRE(dump_status == 0);
    REQUIRE(dump.find("[[listen]]") != std::string::npos);
    ::unlink(good.c_str());
    ::unlink(bad.c_str());
}

TEST_CASE("a listener that cannot bind is a clear start-up failure (exit 1)", "[lifecycle][cli]") {
    DaemonProcess first(config(listener("raw", "raw")));
    std::string cfg = write_temp_file("[[listen]]\nname = \"taken\"\nport = " +
                                      std::to_string(first.port("raw")) + "\n");
    auto [status, out] = run_tcpechod({"--config", cfg});
    REQUIRE(status == 1);
    REQUIRE(out.find("listener \"taken\" on 127.0.0.1:" + std::to_string(first.port("raw")) + ": bind") !=
            std::string::npos);
    ::unlink(cfg.c_str());
}

TEST_CASE("on the journal's stream, lines carry sd-daemon priority prefixes", "[lifecycle][log]") {
    DaemonProcess d(DaemonOptions{config(listener("length", "length", "max_frame = 10")), {}, {}, true});
    REQUIRE(d.wait_for_log("<5>listening name=length", 0ms));  // notice
    UniqueFd c = connect_to(d.port("length"));
    send_all(c.get(), length_frame(std::string(11, 'x')));
    REQUIRE(closed_by_peer_within(c.get(), 5s));
    REQUIRE(d.wait_for_log("<4>connection closed: frame too large", 2s));  // warning
    REQUIRE(d.log_text().find("tcpechod[") == std::string::npos);  // no ident/level text: journald adds its own
}

TEST_CASE("off the journal, lines name the program, pid and level", "[lifecycle][log]") {
    DaemonProcess d(config(listener("raw", "raw")));
    REQUIRE(d.wait_for_log("tcpechod[" + std::to_string(d.pid()) + "]: notice: listening name=raw", 0ms));
}
