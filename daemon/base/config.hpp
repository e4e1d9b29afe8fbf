// tcpechod's configuration as plain values: what service/config_loader.hpp reads from TOML.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/log.hpp"
#include "lib/framer.hpp"

namespace tcpecho {

enum class Protocol : std::uint8_t { Tcp, Udp };
std::string_view to_string(Protocol proto) noexcept;

// Per-listener limits; [limits] gives the defaults, a [[listen]] table may override each one.
struct Limits {
    std::uint32_t max_connections = 10000;
    std::uint64_t idle_timeout_ms = 300'000;  // 0 = off
    // TCP_USER_TIMEOUT on every connection: echo data the peer has not acknowledged (or a zero
    // window it keeps closed) for this long aborts the connection. 0 = the kernel's default
    // (about 15 minutes of retransmissions).
    std::uint64_t send_timeout_ms = 30'000;
    std::uint32_t max_frame = 16 * 1024 * 1024;
    std::uint32_t output_high_watermark = 1024 * 1024;
    std::uint32_t output_low_watermark = 256 * 1024;
    // UDP listeners: replies per second to one source address (token bucket), 0 = unlimited;
    // the bucket holds udp_burst replies (0 = one second's worth). On by default, as in the
    // shipped file: a hand-written config without [limits] must not make an open reflector.
    std::uint32_t udp_rate_limit = 1000;
    std::uint32_t udp_burst = 0;
    // UDP listeners: larger datagrams arrive truncated (MSG_TRUNC) and are dropped, not echoed.
    std::uint32_t udp_max_datagram = 65535;

    // The bucket size udp_burst stands for.
    [[nodiscard]] std::uint32_t effective_udp_burst() const noexcept {
        return udp_burst != 0 ? udp_burst : udp_rate_limit;
    }
};

struct ListenerConfig {
    std::string name;
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
    Protocol proto = Protocol::Tcp;
    FramingMode mode = FramingMode::Raw;  // always Raw for UDP: a datagram is echoed whole
    std::uint32_t frame_size = 524288;  // fixed mode only
    Limits limits;
};

// [metrics]: the Prometheus endpoint (GET /metrics over HTTP), served on the workers' loops.
struct MetricsConfig {
    std::string name = "metrics";  // with socket activation: the FileDescriptorName= it is served from
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
};

struct Config {
    unsigned workers = 0;  // 0 = one per online CPU
    LogLevel log_level = LogLevel::Info;
    std::uint64_t drain_timeout_ms = 10'000;
    // Buffer memory of all TCP connections together (see MemoryBudget); at the budget, reading
    // and accepting pause until echoes drain.
    std::uint64_t max_buffer_memory = 512ULL * 1024 * 1024;
    Limits limits;
    std::vector<ListenerConfig> listeners;
    std::optional<MetricsConfig> metrics;  // absent: no endpoint
    std::string source;  // file name, or "<embedded default>"
};

// A configuration that cannot be used. what() is the complete message:
// "FILE:LINE:COLUMN: KEY: PROBLEM" (or "FILE: PROBLEM" when the file cannot be read).
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace tcpecho
