#include "daemon/service/config_loader.hpp"

#include <toml++/toml.h>

#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/default_config.hpp"  // generated from etc/tcpechod.toml (daemon/meson.build)
#include "lib/address.hpp"
#include "lib/fd.hpp"
#include "lib/units.hpp"

namespace tcpecho {

std::string_view to_string(Protocol proto) noexcept { return proto == Protocol::Tcp ? "tcp" : "udp"; }

std::string_view embedded_default_config() noexcept { return kDefaultConfigText; }

unsigned effective_workers(const Config& config) noexcept {
    if (config.workers != 0) return config.workers;
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<unsigned>(n) : 1U;
}

namespace {

constexpr std::uint64_t kMaxFrameLimit = 1ULL << 30;       // 1 GiB
constexpr std::uint64_t kMaxFrameSize = 64ULL << 20;       // fixed-mode frames: 64 MiB
constexpr std::uint64_t kMaxWatermark = 1ULL << 30;        // 1 GiB
constexpr std::uint64_t kMaxConnections = 10'000'000;
constexpr std::uint64_t kMaxWorkers = 1024;
constexpr std::uint64_t kMaxDurationMs = 7ULL * 24 * 3600 * 1000;  // a week
constexpr std::uint64_t kMaxSendTimeoutMs = 24ULL * 3600 * 1000;  // a day
// At least a few pool buffers' worth; at most what a 64-bit address space makes sensible.
constexpr std::uint64_t kMinBufferMemory = 4ULL * 1024 * 1024;
constexpr std::uint64_t kMaxBufferMemory = 1ULL << 50;
// GCRA charges whole nanoseconds per reply: at 10M/s (100 ns) rounding costs at most 1%.
constexpr std::uint64_t kMaxUdpRate = 10'000'000;
constexpr std::uint64_t kMaxUdpBurst = 1'000'000'000;
constexpr std::uint64_t kMaxUdpDatagram = 65535;  // the IP length field: no datagram is larger

// Reports problems at a node's position, with the dotted key path.
class Reporter {
public:
    explicit Reporter(std::string_view source) : source_(source) {}

    [[noreturn]] void fail(const toml::source_region& where, std::string_view key, std::string_view problem) const {
        std::ostringstream out;
        out << source_ << ':' << where.begin.line << ':' << where.begin.column << ": ";
        if (!key.empty()) out << key << ": ";
        out << problem;
        throw ConfigError(out.str());
    }

private:
    std::string source_;
};

std::string join_key(std::string_view prefix, std::string_view key) {
    if (prefix.empty()) return std::string(key);
    return std::string(prefix) + "." + std::string(key);
}

// Rejects keys nobody reads: a typo must not silently fall back to a default.
void check_known_keys(const Reporter& rep, const toml::table& table, std::string_view prefix,
                      std::initializer_list<std::string_view> known) {
    for (auto&& [key, node] : table) {
        bool found = false;
        for (std::string_view k : known) found = found || key.str() == k;
        if (!found) {
            std::string msg = "unknown key";
            rep.fail(key.source(), join_key(prefix, key.str()), msg);
        }
    }
}

std::uint64_t get_unsigned(const Reporter& rep, const toml::node& node, const std::string& key, std::uint64_t min,
                           std::uint64_t max) {
    const auto* v = node.as_integer();
    if (v == nullptr) rep.fail(node.source(), key, "expected an integer");
    std::int64_t n = v->get();
    if (n < 0 || static_cast<std::uint64_t>(n) < min || static_cast<std::uint64_t>(n) > max) {
        rep.fail(node.source(), key,
                 "value " + std::to_string(n) + " is out of range (" + std::to_string(min) + ".." +
                     std::to_string(max) + ")");
    }
    return static_cast<std::uint64_t>(n);
}

// "512", "64KiB", "16MiB", "1GiB" (also K/M/G, KB/MB/GB as binary units) or an integer.
std::uint64_t get_size(const Reporter& rep, const toml::node& node, const std::string& key, std::uint64_t min,
                       std::uint64_t max) {
    if (node.is_integer()) return get_unsigned(rep, node, key, min, max);
    const auto* s = node.as_string();
    if (s == nullptr) rep.fail(node.source(), key, "expected an integer number of bytes or a string such as \"64KiB\"");
    std::string_view text = s->get();
    auto bytes = parse_size(text);
    if (!bytes) rep.fail(node.source(), key, "cannot parse size \"" + std::string(text) + "\" (use bytes, KiB, MiB or GiB)");
    if (*bytes < min || *bytes > max) {
        rep.fail(node.source(), key,
                 "size \"" + std::string(text) + "\" is out of range (" + std::to_string(min) + ".." +
                     std::to_string(max) + " bytes)");
    }
    return *bytes;
}

// Seconds as an integer, or a string with a unit: "250ms", "10s", "5m", "1h".
std::uint64_t get_duration_ms(const Reporter& rep, const toml::node& node, const std::string& key,
                              std::uint64_t max_ms) {
    if (node.is_integer()) return get_unsigned(rep, node, key, 0, max_ms / 1000) * 1000;
    const auto* s = node.as_string();
    if (s == nullptr) rep.fail(node.source(), key, "expected seconds (an integer) or a string such as \"10s\"");
    std::string_view text = s->get();
    auto us = parse_duration_us(text);
    if (!us || *us % 1000 != 0) {
        rep.fail(node.source(), key, "cannot parse duration \"" + std::string(text) + "\" (use ms, s, m or h)");
    }
    if (*us / 1000 > max_ms) {
        rep.fail(node.source(), key,
                 "duration \"" + std::string(text) + "\" is out of range (at most " + std::to_string(max_ms / 1000) +
                     "s)");
    }
    return *us / 1000;
}

std::string_view get_string(const Reporter& rep, const toml::node& node, const std::string& key) {
    const auto* s = node.as_string();
    if (s == nullptr) rep.fail(node.source(), key, "expected a string");
    return s->get();
}

// Reads the limit keys present in `table` into `limits` (others keep their value).
void read_limits(const Reporter& rep, const toml::table& table, std::string_view prefix, Limits& limits) {
    for (auto&& [k, node] : table) {
        std::string key = join_key(prefix, k.str());
        if (k.str() == "max_connections") {
            limits.max_connections = static_cast<std::uint32_t>(get_unsigned(rep, node, key, 1, kMaxConnections));
        } else if (k.str() == "idle_timeout") {
            limits.idle_timeout_ms = get_duration_ms(rep, node, key, kMaxDurationMs);
        } else if (k.str() == "send_timeout") {
            // TCP_USER_TIMEOUT is an unsigned int of milliseconds.
            limits.send_timeout_ms = get_duration_ms(rep, node, key, kMaxSendTimeoutMs);
        } else if (k.str() == "max_frame") {
            limits.max_frame = static_cast<std::uint32_t>(get_size(rep, node, key, 1, kMaxFrameLimit));
        } else if (k.str() == "output_high_watermark") {
            limits.output_high_watermark = static_cast<std::uint32_t>(get_size(rep, node, key, 1024, kMaxWatermark));
        } else if (k.str() == "output_low_watermark") {
            limits.output_low_watermark = static_cast<std::uint32_t>(get_size(rep, node, key, 0, kMaxWatermark));
        } else if (k.str() == "udp_rate_limit") {
            limits.udp_rate_limit = static_cast<std::uint32_t>(get_unsigned(rep, node, key, 0, kMaxUdpRate));
        } else if (k.str() == "udp_burst") {
            limits.udp_burst = static_cast<std::uint32_t>(get_unsigned(rep, node, key, 0, kMaxUdpBurst));
        } else if (k.str() == "udp_max_datagram") {
            limits.udp_max_datagram = static_cast<std::uint32_t>(get_size(rep, node, key, 1, kMaxUdpDatagram));
        }
    }
}

const toml::node* position_of(const toml::table& table, std::string_view key) {
    const toml::node* n = table.get(key);
    return n != nullptr ? n : &table;
}

void check_watermarks(const Reporter& rep, const toml::table& table, std::string_view prefix, const Limits& limits) {
    if (limits.output_low_watermark < limits.output_high_watermark) return;
    // Point at the key this table sets (the other one may be inherited), and name that key.
    std::string_view key = table.get("output_low_watermark") != nullptr ? "output_low_watermark"
                                                                          : "output_high_watermark";
    std::string low = std::to_string(limits.output_low_watermark);
    std::string high = std::to_string(limits.output_high_watermark);
    rep.fail(position_of(table, key)->source(), join_key(prefix, key),
             key == "output_low_watermark" ? "must be below output_high_watermark (" + low + " >= " + high + ")"
                                           : "must be above output_low_watermark (" + high + " <= " + low + ")");
}

const std::initializer_list<std::string_view> kTcpLimitKeys = {
    "max_connections", "idle_timeout", "send_timeout", "max_frame", "output_high_watermark", "output_low_watermark"};
const std::initializer_list<std::string_view> kUdpLimitKeys = {"udp_rate_limit", "udp_burst", "udp_max_datagram"};
const std::initializer_list<std::string_view> kLimitKeys = {
    "max_connections", "idle_timeout", "send_timeout", "max_frame", "output_high_watermark",
    "output_low_watermark", "udp_rate_limit", "udp_burst", "udp_max_datagram"};

bool is_one_of(std::string_view key, std::initializer_list<std::string_view> keys) {
    for (std::string_view k : keys) {
        if (k == key) return true;
    }
    return false;
}

// A [[listen]] table may only set the limits its protocol uses: a TCP limit on a UDP listener
// (or the reverse) would silently do nothing. [limits] may set both kinds, as defaults.
void check_protocol_keys(const Reporter& rep, const toml::table& table, std::string_view prefix, Protocol proto) {
    for (auto&& [k, node] : table) {
        if (proto == Protocol::Udp && is_one_of(k.str(), kTcpLimitKeys)) {
            rep.fail(k.source(), join_key(prefix, k.str()), "applies to tcp listeners only (this one is proto = \"udp\")");
        }
        if (proto == Protocol::Tcp && is_one_of(k.str(), kUdpLimitKeys)) {
            rep.fail(k.source(), join_key(prefix, k.str()), "applies to udp listeners only (this one is proto = \"tcp\")");
        }
    }
}

// The keys a listening socket shares with the [metrics] table.
std::string read_socket_name(const Reporter& rep, const toml::node& node, const std::string& key) {
    std::string_view name = get_string(rep, node, key);
    if (name.empty()) rep.fail(node.source(), key, "must not be empty");
    return std::string(name);
}

std::string read_socket_address(const Reporter& rep, const toml::node& node, const std::string& key) {
    std::string address(get_string(rep, node, key));
    if (!SocketAddress::parse(address, 0)) {
        rep.fail(node.source(), key,
                 "\"" + address + "\" is not a numeric IPv4 or IPv6 address (e.g. \"127.0.0.1\", \"::\")");
    }
    return address;
}

std::uint16_t read_socket_port(const Reporter& rep, const toml::node& node, const std::string& key) {
    return static_cast<std::uint16_t>(get_unsigned(rep, node, key, 0, 65535));
}

MetricsConfig read_metrics(const Reporter& rep, const toml::table& table) {
    check_known_keys(rep, table, "metrics", {"name", "address", "port"});
    MetricsConfig mc;
    bool have_port = false;
    for (auto&& [k, node] : table) {
        std::string key = join_key("metrics", k.str());
        if (k.str() == "name") {
            mc.name = read_socket_name(rep, node, key);
        } else if (k.str() == "address") {
            mc.address = read_socket_address(rep, node, key);
        } else if (k.str() == "port") {
            mc.port = read_socket_port(rep, node, key);
            have_port = true;
        }
    }
    if (!have_port) rep.fail(table.source(), "metrics.port", "missing (use 0 to pick a free port)");
    return mc;
}

ListenerConfig read_listener(const Reporter& rep, const toml::table& table, std::size_t index,
                             const Limits& defaults) {
    std::string prefix = "listen[" + std::to_string(index) + "]";
    check_known_keys(rep, table, prefix,
                     {"name", "address", "port", "proto", "mode", "frame_size", "max_connections", "idle_timeout",
                      "send_timeout", "max_frame", "output_high_watermark", "output_low_watermark", "udp_rate_limit", "udp_burst",
                      "udp_max_datagram"});
    ListenerConfig lc;
    lc.limits = defaults;
    lc.name = "listen" + std::to_string(index);
    const toml::node* frame_size_node = nullptr;
    const toml::node* mode_node = nullptr;
    bool have_port = false;
    for (auto&& [k, node] : table) {
        std::string key = join_key(prefix, k.str());
        if (k.str() == "name") {
            lc.name = read_socket_name(rep, node, key);
        } else if (k.str() == "address") {
            lc.address = read_socket_address(rep, node, key);
        } else if (k.str() == "port") {
            lc.port = read_socket_port(rep, node, key);
            have_port = true;
        } else if (k.str() == "proto") {
            std::string_view p = get_string(rep, node, key);
            if (p == "tcp") {
                lc.proto = Protocol::Tcp;
            } else if (p == "udp") {
                lc.proto = Protocol::Udp;
            } else {
                rep.fail(node.source(), key, "must be \"tcp\" or \"udp\", not \"" + std::string(p) + "\"");
            }
        } else if (k.str() == "mode") {
            std::string_view m = get_string(rep, node, key);
            auto mode = parse_framing_mode(m);
            if (!mode) {
                rep.fail(node.source(), key,
                         "must be \"raw\", \"fixed\", \"length\" or \"line\", not \"" + std::string(m) + "\"");
            }
            lc.mode = *mode;
            mode_node = &node;
        } else if (k.str() == "frame_size") {
            lc.frame_size = static_cast<std::uint32_t>(get_size(rep, node, key, 1, kMaxFrameSize));
            frame_size_node = &node;
        }
    }
    check_protocol_keys(rep, table, prefix, lc.proto);
    if (lc.proto == Protocol::Udp && lc.mode != FramingMode::Raw) {
        rep.fail(mode_node->source(), join_key(prefix, "mode"),
                 "udp listeners echo each datagram whole; mode must be \"raw\" (or left out)");
    }
    read_limits(rep, table, prefix, lc.limits);
    check_watermarks(rep, table, prefix, lc.limits);
    if (!have_port) rep.fail(table.source(), join_key(prefix, "port"), "missing (use 0 to pick a free port)");
    if (frame_size_node != nullptr && lc.mode != FramingMode::Fixed) {
        rep.fail(frame_size_node->source(), join_key(prefix, "frame_size"),
                 "only applies to mode = \"fixed\" (this listener's mode is \"" + std::string(to_string(lc.mode)) +
                     "\")");
    }
    return lc;
}

}  // namespace

Config parse_config(std::string_view text, std::string_view source_name) {
    Reporter rep(source_name);
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& err) {
        std::ostringstream out;
        out << source_name << ':' << err.source().begin.line << ':' << err.source().begin.column
            << ": syntax error: " << err.description();
        throw ConfigError(out.str());
    }

    check_known_keys(rep, root, "",
                     {"workers", "log_level", "drain_timeout", "max_buffer_memory", "limits", "listen", "metrics"});
    Config cfg;
    cfg.source = source_name;
    for (auto&& [k, node] : root) {
        std::string key(k.str());
        if (key == "workers") {
            cfg.workers = static_cast<unsigned>(get_unsigned(rep, node, key, 0, kMaxWorkers));
        } else if (key == "log_level") {
            std::string_view name = get_string(rep, node, key);
            auto level = parse_log_level(name);
            if (!level) {
                rep.fail(node.source(), key,
                         "must be one of debug, info, notice, warning, err (not \"" + std::string(name) + "\")");
            }
            cfg.log_level = *level;
        } else if (key == "drain_timeout") {
            cfg.drain_timeout_ms = get_duration_ms(rep, node, key, 3'600'000);
        } else if (key == "max_buffer_memory") {
            cfg.max_buffer_memory = get_size(rep, node, key, kMinBufferMemory, kMaxBufferMemory);
        } else if (key == "limits") {
            const toml::table* limits = node.as_table();
            if (limits == nullptr) rep.fail(node.source(), key, "expected a table ([limits])");
            check_known_keys(rep, *limits, "limits", kLimitKeys);
            read_limits(rep, *limits, "limits", cfg.limits);
            check_watermarks(rep, *limits, "limits", cfg.limits);
        } else if (key == "metrics") {
            const toml::table* metrics = node.as_table();
            if (metrics == nullptr) rep.fail(node.source(), key, "expected a table ([metrics])");
            cfg.metrics = read_metrics(rep, *metrics);
        }
    }

    const toml::node* listen = root.get("listen");
    if (listen == nullptr) {
        rep.fail(toml::source_region{{1, 1}, {1, 1}, nullptr}, "listen", "no [[listen]] table: nothing to serve");
    }
    const toml::array* list = listen->as_array();
    if (list == nullptr) rep.fail(listen->source(), "listen", "expected an array of tables ([[listen]])");
    if (list->empty()) rep.fail(listen->source(), "listen", "no [[listen]] table: nothing to serve");
    // One name may cover a TCP and a UDP listener (as one systemd socket unit can), so a name
    // is unique per protocol, and so is a port.
    std::set<std::pair<std::string, Protocol>> names;
    std::vector<std::pair<SocketAddress, Protocol>> bound;  // fixed ports, to find binds that must fail
    std::size_t index = 0;
    for (const toml::node& item : *list) {
        const toml::table* t = item.as_table();
        if (t == nullptr) rep.fail(item.source(), "listen[" + std::to_string(index) + "]", "expected a table");
        ListenerConfig lc = read_listener(rep, *t, index, cfg.limits);
        std::string prefix = "listen[" + std::to_string(index) + "]";
        std::string proto_name(to_string(lc.proto));
        if (!names.insert({lc.name, lc.proto}).second) {
            rep.fail(position_of(*t, "name")->source(), join_key(prefix, "name"),
                     "duplicate listener name \"" + lc.name + "\" (for proto = \"" + proto_name + "\")");
        }
        SocketAddress here = *SocketAddress::parse(lc.address, lc.port);
        for (const auto& [other, other_proto] : bound) {
            if (other_proto != lc.proto || other.port() != lc.port || !here.overlaps(other)) continue;
            rep.fail(position_of(*t, "port")->source(), join_key(prefix, "port"),
                     here.to_string() + (here.to_string() == other.to_string()
                                             ? " is already used by another " + proto_name + " listener"
                                             : " overlaps " + other.to_string() + " of another " + proto_name +
                                                   " listener"));
        }
        if (lc.port != 0) bound.emplace_back(here, lc.proto);
        // A frame is echoed only once it is whole, so one that cannot fit in the budget would
        // stall its connection for good.
        std::uint64_t largest = Framer(lc.mode, lc.frame_size, lc.limits.max_frame).largest_frame();
        if (lc.proto == Protocol::Tcp && lc.mode != FramingMode::Raw && largest > cfg.max_buffer_memory) {
            std::string_view key = lc.mode == FramingMode::Fixed ? "frame_size" : "max_frame";
            const toml::node* at = t->get(key) != nullptr ? t->get(key) : root.get("max_buffer_memory");
            rep.fail(at != nullptr ? at->source() : t->source(), join_key(prefix, key),
                     "a frame of up to " + std::to_string(largest) + " bytes does not fit in max_buffer_memory (" +
                         std::to_string(cfg.max_buffer_memory) + " bytes)");
        }
        cfg.listeners.push_back(std::move(lc));
        ++index;
    }
    if (cfg.metrics) {
        // The endpoint is one more TCP socket: under socket activation it is found by name, and
        // a fixed port must not be a TCP listener's.
        const toml::table& mt = *root.get("metrics")->as_table();
        for (const ListenerConfig& lc : cfg.listeners) {
            if (lc.proto == Protocol::Tcp && lc.name == cfg.metrics->name) {
                const toml::node* at = mt.get("name") != nullptr ? mt.get("name") : &mt;
                rep.fail(at->source(), "metrics.name",
                         "\"" + lc.name + "\" is also a tcp listener's name (socket activation finds sockets by name)");
            }
        }
        SocketAddress here = *SocketAddress::parse(cfg.metrics->address, cfg.metrics->port);
        for (const auto& [other, other_proto] : bound) {
            if (other_proto != Protocol::Tcp || other.port() != cfg.metrics->port || !here.overlaps(other)) continue;
            rep.fail(mt.get("port")->source(), "metrics.port",
                     here.to_string() + " is already used by a tcp listener");
        }
    }
    return cfg;
}

Config load_config_file(const std::string& path) {
    std::string text;
    const FileRead r = read_whole_file(path, text);
    // e.g. EISDIR: open() succeeds on a directory, read() does not.
    if (r.error != 0) throw ConfigError(path + ": cannot " + r.step + ": " + errno_text(r.error));
    return parse_config(text, path);
}

}  // namespace tcpecho
