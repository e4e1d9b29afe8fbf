// Logging to stderr: one write(2) per line (lines from worker threads never interleave), with
// sd-daemon "<N>" priority prefixes when stderr is connected to the journal (JOURNAL_STREAM).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tcpecho {

// Values are syslog priorities, as sd-daemon(3) prefixes expect.
enum class LogLevel : std::uint8_t { Err = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;
std::string_view to_string(LogLevel level) noexcept;

// Call once at start-up (before threads exist); `ident` prefixes lines when not on the journal.
void log_init(std::string_view ident);
void log_set_level(LogLevel level) noexcept;
[[nodiscard]] bool log_enabled(LogLevel level) noexcept;
// True when stderr is the journal stream named by $JOURNAL_STREAM (device:inode match).
[[nodiscard]] bool log_to_journal() noexcept;

void log_message(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

// Per-thread budget for lines an abusive peer can trigger: at most `per_second` such lines,
// then one "suppressed N" line when the next second starts.
class LogRateLimit {
public:
    explicit LogRateLimit(std::uint32_t per_second) noexcept : per_second_(per_second) {}
    // Returns whether a line may be written now (`now_ms`: a monotonic clock).
    [[nodiscard]] bool allow(std::uint64_t now_ms) noexcept;

private:
    std::uint32_t per_second_;
    std::uint32_t used_ = 0;
    std::uint64_t suppressed_ = 0;
    std::uint64_t window_start_ms_ = 0;
};

// "peer=192.0.2.1:40000 listener=echo": how every line about one peer ends, so a log search
// for a client or a listener finds all of them.
inline std::string peer_tail(std::string_view peer, std::string_view listener) {
    return "peer=" + std::string(peer) + " listener=" + std::string(listener);
}

// "1 listener", "2 listeners": a count with its noun, for messages.
inline std::string count_text(std::uint64_t n, std::string_view one, std::string_view many) {
    return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

}  // namespace tcpecho

#define TE_LOG(level, ...)                                                   \
    do {                                                                     \
        if (::tcpecho::log_enabled(level)) ::tcpecho::log_message(level, __VA_ARGS__); \
    } while (0)
#define LOG_ERR(...) TE_LOG(::tcpecho::LogLevel::Err, __VA_ARGS__)
#define LOG_WARNING(...) TE_LOG(::tcpecho::LogLevel::Warning, __VA_ARGS__)
#define LOG_NOTICE(...) TE_LOG(::tcpecho::LogLevel::Notice, __VA_ARGS__)
#define LOG_INFO(...) TE_LOG(::tcpecho::LogLevel::Info, __VA_ARGS__)
#define LOG_DEBUG(...) TE_LOG(::tcpecho::LogLevel::Debug, __VA_ARGS__)
