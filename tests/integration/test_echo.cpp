// Echo semantics of every mode, against the real daemon.
#include <netinet/in.h>
#include <sys/socket.h>

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

std::string random_text(std::uint64_t seed, std::size_t n, bool avoid_newline = false) {
    std::string s(n, '\0');
    PayloadStream(seed, avoid_newline).fill(reinterpret_cast<std::byte*>(s.data()), n);
    return s;
}

// Sends `frame` one byte per send(): before the last byte nothing may come back; after it
// exactly the frame.
void one_byte_at_a_time(int fd, const std::string& frame) {
    for (std::size_t i = 0; i + 1 < frame.size(); ++i) send_all(fd, frame.data() + i, 1);
    INFO("frame of " << frame.size() << " bytes");
    REQUIRE_FALSE(readable_within(fd, 200ms));  // nothing of an incomplete frame is echoed
    send_all(fd, frame.data() + frame.size() - 1, 1);
    REQUIRE(recv_string(fd, frame.size(), 5s) == frame);
    REQUIRE_FALSE(readable_within(fd, 50ms));  // and only once
}

}  // namespace

TEST_CASE("raw mode echoes 64 MiB full duplex, every byte verified", "[echo][raw]") {
    DaemonProcess d(all_modes_config());
    UniqueFd c = connect_to(d.port("raw"));
    TransferResult r = full_duplex(c.get(), 64ULL << 20, 0x5eed, 60s);
    INFO(r.error);
    REQUIRE(r.ok);
    REQUIRE(r.verified == 64ULL << 20);
}

TEST_CASE("raw mode serves IPv6 and dual-stack listeners", "[echo][ipv6]") {
    DaemonProcess d(config(listener("v6", "raw", "", "::1") + listener("dual", "raw", "", "::")));
    UniqueFd a = connect_to(d.port("v6"), "::1");
    send_all(a.get(), "over ipv6\n");
    REQUIRE(recv_string(a.get(), 10, 5s) == "over ipv6\n");
    UniqueFd b = connect_to(d.port("dual"), "127.0.0.1");  // IPv4 to "::"
    send_all(b.get(), "v4 on dual\n");
    REQUIRE(recv_string(b.get(), 11, 5s) == "v4 on dual\n");
}

TEST_CASE("framed modes echo a frame sent one byte per segment once, whole", "[echo][framed]") {
    DaemonProcess d(all_modes_config());
    SECTION("fixed") {
        UniqueFd c = connect_to(d.port("fixed"));
        one_byte_at_a_time(c.get(), random_text(1, 100));
    }
    SECTION("length") {
        UniqueFd c = connect_to(d.port("length"));
        one_byte_at_a_time(c.get(), length_frame(random_text(2, 77)));
        one_byte_at_a_time(c.get(), length_frame(""));  // a zero-length payload is a frame too
    }
    SECTION("line") {
        UniqueFd c = connect_to(d.port("line"));
        one_byte_at_a_time(c.get(), random_text(3, 60, true) + "\n");
        one_byte_at_a_time(c.get(), "\n");
    }
}

TEST_CASE("framed modes echo many pipelined frames from one segment, in order", "[echo][framed]") {
    DaemonProcess d(all_modes_config());
    auto check = [&](const std::string& listener_name, const std::string& stream) {
        UniqueFd c = connect_to(d.port(listener_name));
        send_all(c.get(), stream);
        REQUIRE(recv_string(c.get(), stream.size(), 10s) == stream);
        REQUIRE_FALSE(readable_within(c.get(), 50ms));
    };
    std::string fixed;
    std::string length;
    std::string line;
    for (int i = 0; i < 200; ++i) {
        fixed += random_text(100 + static_cast<std::uint64_t>(i), 100);
        length += length_frame(random_text(300 + static_cast<std::uint64_t>(i), static_cast<std::size_t>(i * 7)));
        line += random_text(600 + static_cast<std::uint64_t>(i), static_cast<std::size_t>(i), true) + "\n";
    }
    check("fixed", fixed);
    check("length", length);
    check("line", line);
    std::uint64_t frames = d.counter("frames_echoed");
    REQUIRE(frames == 600);
}

TEST_CASE("framed modes hold back a partial frame that straddles reads", "[echo][framed]") {
    DaemonProcess d(all_modes_config());
    UniqueFd c = connect_to(d.port("length"));
    std::string a = length_frame(random_text(10, 1000));
    std::string b = length_frame(random_text(11, 3000));
    // First write: frame a and half of b; only a may come back.
    send_all(c.get(), a + b.substr(0, 1500));
    REQUIRE(recv_string(c.get(), a.size(), 5s) == a);
    REQUIRE_FALSE(readable_within(c.get(), 200ms));
    send_all(c.get(), b.substr(1500));
    REQUIRE(recv_string(c.get(), b.size(), 5s) == b);
}

TEST_CASE("fixed mode with large frames echoes 16 MiB of 512 KiB frames", "[echo][framed]") {
    DaemonProcess d(config(listener("big", "fixed", "frame_size = 524288")));
    UniqueFd c = connect_to(d.port("big"));
    TransferResult r = full_duplex(c.get(), 16ULL << 20, 77, 60s);
    INFO(r.error);
    REQUIRE(r.ok);
    REQUIRE(d.counter("frames_echoed") == 32);
}
