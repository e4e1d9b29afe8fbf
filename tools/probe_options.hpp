// tcpecho-probe's command line: what a run does, parsed and validated in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "tools/message_stream.hpp"

namespace tcpecho::probe {

// Exit statuses (binding): 0 verified, 1 verification failed, 2 usage, 3 connect/reset/timeout.
// With --udp: 1 also for loss above --max-loss, 2 also when the kernel refuses the datagram
// size (EMSGSIZE), 3 for socket errors such as connection refused (udp_result.hpp).
inline constexpr int kExitOk = 0;
inline constexpr int kExitMismatch = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNetwork = 3;

enum class Workload : std::uint8_t {
    PingPong,  // one message in flight: send it, read its whole echo, then the next
    Stream,    // full duplex, at most `window` bytes sent and not yet echoed
};

enum class RecvMode : std::uint8_t {
    Loop,     // recv() until the message is complete (what a correct client does)
    Once,     // one recv() per message, like the naive client: shows the misalignment
    WaitAll,  // recv(MSG_WAITALL) for the rest of the message
    LowAt,    // SO_RCVLOWAT = lowat: the kernel wakes us only when that much is queued
};

struct Options {
    std::string host;
    std::string port = "7";
    MessageShape shape;
    std::optional<std::uint64_t> count;    // messages per connection
    std::optional<std::uint64_t> time_us;  // or a run time; default: count = 1000
    unsigned connections = 1;
    unsigned threads = 0;  // 0 = min(connections, online CPUs)
    Workload workload = Workload::PingPong;
    std::uint64_t window = 1ULL << 20;
    double rate = 0;  // messages/s over all connections; 0 = as fast as the echo allows
    unsigned split = 1;
    std::uint64_t split_delay_us = 1000;
    std::uint64_t seed = 0;
    bool seed_given = false;
    RecvMode recv = RecvMode::Loop;
    std::uint32_t lowat = 0;
    std::uint64_t timeout_us = 5'000'000;
    bool json = false;
    bool quiet = false;
    std::optional<bool> progress;  // unset: on when stdout is a terminal
    std::string hdr_out;           // --hdr-out FILE: the latency distribution, HdrHistogram's format
    // --udp: datagrams instead of a byte stream. `connections` is then the number of flows
    // (one connected UDP socket each), `shape.size_*` the UDP payload size of each datagram,
    // `count` datagrams per flow, `timeout_us` how long a datagram may take to come back
    // before it counts as lost; the TCP-only options (mode, recv, split) are refused.
    bool udp = false;
    double max_loss_percent = 0;  // --max-loss: exit 1 when more of the datagrams are lost
};

struct ShowText {
    std::string text;  // --help or --version output, exit 0
};
struct UsageError {
    std::string message;  // printed as "tcpecho-probe: MESSAGE", exit 2
};

std::variant<Options, ShowText, UsageError> parse_options(int argc, char** argv);

std::string_view to_string(Workload workload) noexcept;
std::string to_string(RecvMode mode, std::uint32_t lowat);

}  // namespace tcpecho::probe
