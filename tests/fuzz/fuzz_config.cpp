// libFuzzer target: the configuration loader (tcpecho::parse_config on the input as TOML).
//
// A ConfigError is the expected answer to a bad file; any other exception, a crash or
// undefined behaviour is a bug. An error must be usable by an admin: it starts with the file
// name, then line:column inside the text (or at most one past its last line), then a message.
// An accepted configuration must satisfy what the loader promises to validate, and parsing it
// again gives the same configuration.
#include <cstring>
#include <string>
#include <string_view>

#include "daemon/service/config_loader.hpp"
#include "fuzz_common.hpp"

namespace {

constexpr std::string_view kSource = "fuzz.toml";

// Reads a decimal number at `pos` (at least one digit); advances `pos`.
bool read_number(std::string_view s, std::size_t& pos, unsigned long long& value) {
    std::size_t start = pos;
    value = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 12) {
        value = value * 10 + static_cast<unsigned long long>(s[pos] - '0');
        ++pos;
    }
    return pos > start;
}

void check_error(std::string_view text, std::string_view msg) {
    // "fuzz.toml:LINE:COLUMN: KEY: PROBLEM" (parse_config reads no file, so always a position).
    FUZZ_CHECK(msg.substr(0, kSource.size()) == kSource);
    FUZZ_CHECK(msg.size() > kSource.size() && msg[kSource.size()] == ':');
    std::size_t pos = kSource.size() + 1;
    unsigned long long line = 0;
    unsigned long long column = 0;
    FUZZ_CHECK(read_number(msg, pos, line));
    FUZZ_CHECK(pos < msg.size() && msg[pos] == ':');
    ++pos;
    FUZZ_CHECK(read_number(msg, pos, column));
    FUZZ_CHECK(msg.substr(pos, 2) == ": ");
    FUZZ_CHECK(msg.size() > pos + 2);  // and a message
    FUZZ_CHECK(line >= 1 && column >= 1);
    unsigned long long lines = 1;
    for (char c : text) lines += c == '\n' ? 1 : 0;
    FUZZ_CHECK(line <= lines + 1);
}

void check_accepted(const tcpecho::Config& cfg) {
    using tcpecho::FramingMode;
    using tcpecho::Protocol;
    FUZZ_CHECK(cfg.source == kSource);
    FUZZ_CHECK(!cfg.listeners.empty());
    FUZZ_CHECK(cfg.limits.output_low_watermark < cfg.limits.output_high_watermark);
    for (const tcpecho::ListenerConfig& l : cfg.listeners) {
        FUZZ_CHECK(!l.name.empty());
        FUZZ_CHECK(l.limits.output_low_watermark < l.limits.output_high_watermark);
        FUZZ_CHECK(l.limits.max_frame >= 1);
        FUZZ_CHECK(l.limits.max_connections >= 1);
        FUZZ_CHECK(l.frame_size >= 1);
        if (l.proto == Protocol::Udp) FUZZ_CHECK(l.mode == FramingMode::Raw);
    }
    for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
        for (std::size_t j = i + 1; j < cfg.listeners.size(); ++j) {
            const auto& a = cfg.listeners[i];
            const auto& b = cfg.listeners[j];
            FUZZ_CHECK(!(a.name == b.name && a.proto == b.proto));
            FUZZ_CHECK(!(a.port != 0 && a.port == b.port && a.proto == b.proto && a.address == b.address));
        }
    }
}

// Everything parse_config decided, to compare two parses.
bool same(const tcpecho::Config& a, const tcpecho::Config& b) {
    auto limits_eq = [](const tcpecho::Limits& x, const tcpecho::Limits& y) {
        return x.max_connections == y.max_connections && x.idle_timeout_ms == y.idle_timeout_ms &&
               x.max_frame == y.max_frame && x.output_high_watermark == y.output_high_watermark &&
               x.output_low_watermark == y.output_low_watermark && x.udp_rate_limit == y.udp_rate_limit &&
               x.udp_burst == y.udp_burst && x.udp_max_datagram == y.udp_max_datagram;
    };
    if (a.workers != b.workers || a.log_level != b.log_level || a.drain_timeout_ms != b.drain_timeout_ms ||
        !limits_eq(a.limits, b.limits) || a.listeners.size() != b.listeners.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.listeners.size(); ++i) {
        const auto& x = a.listeners[i];
        const auto& y = b.listeners[i];
        if (x.name != y.name || x.address != y.address || x.port != y.port || x.proto != y.proto ||
            x.mode != y.mode || x.frame_size != y.frame_size || !limits_eq(x.limits, y.limits)) {
            return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    tcpecho::Config first;
    try {
        first = tcpecho::parse_config(text, kSource);
    } catch (const tcpecho::ConfigError& e) {
        check_error(text, e.what());
        return 0;
    }
    check_accepted(first);
    FUZZ_CHECK(same(first, tcpecho::parse_config(text, kSource)));
    return 0;
}
