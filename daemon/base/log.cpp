#include "daemon/base/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace tcpecho {

namespace {

std::atomic<LogLevel> g_level{LogLevel::Info};
bool g_journal = false;
std::string g_ident = "tcpechod";

bool stderr_is_journal() {
    // systemd.exec(5): JOURNAL_STREAM holds "device:inode" of the stream; compare with fd 2 so a
    // child that inherited the variable but writes elsewhere is not fooled.
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr) return false;
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
    if (name == "err" || name == "error") return LogLevel::Err;
    if (name == "warning" || name == "warn") return LogLevel::Warning;
    if (name == "notice") return LogLevel::Notice;
    if (name == "info") return LogLevel::Info;
    if (name == "debug") return LogLevel::Debug;
    return std::nullopt;
}

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
    case LogLevel::Err:
        return "err";
    case LogLevel::Warning:
        return "warning";
    case LogLevel::Notice:
        return "notice";
    case LogLevel::Info:
        return "info";
    case LogLevel::Debug:
        return "debug";
    }
    return "?";
}

void log_init(std::string_view ident) {
    g_ident = ident;
    g_journal = stderr_is_journal();
}

void log_set_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }

bool log_enabled(LogLevel level) noexcept {
    return static_cast<int>(level) <= static_cast<int>(g_level.load(std::memory_order_relaxed));
}

bool log_to_journal() noexcept { return g_journal; }

void log_message(LogLevel level, const char* fmt, ...) noexcept {
    char line[1024];
    int used = 0;
    if (g_journal) {
        used = std::snprintf(line, sizeof line, "<%d>", static_cast<int>(level));
    } else {
        std::string_view name = to_string(level);
        used = std::snprintf(line, sizeof line, "%s[%d]: %.*s: ", g_ident.c_str(), static_cast<int>(::getpid()),
                             static_cast<int>(name.size()), name.data());
    }
    if (used < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int body = std::vsnprintf(line + used, sizeof line - static_cast<std::size_t>(used) - 1, fmt, ap);
    va_end(ap);
    if (body < 0) return;
    std::size_t len = static_cast<std::size_t>(used) + static_cast<std::size_t>(body);
    if (len > sizeof line - 2) len = sizeof line - 2;  // truncated: keep the newline
    line[len++] = '\n';
    // One write(2): lines from different threads stay whole. A full or closed stderr must not
    // stop the daemon, so the result is deliberately ignored.
    ssize_t ignored = ::write(STDERR_FILENO, line, len);
    (void)ignored;
}

bool LogRateLimit::allow(std::uint64_t now_ms) noexcept {
    if (now_ms - window_start_ms_ >= 1000) {
        if (suppressed_ > 0) {
            log_message(LogLevel::Notice, "suppressed %llu similar log lines in the last period",
                        static_cast<unsigned long long>(suppressed_));
        }
        window_start_ms_ = now_ms;
        used_ = 0;
        suppressed_ = 0;
    }
    if (used_ < per_second_) {
        ++used_;
        return true;
    }
    ++suppressed_;
    return false;
}

}  // namespace tcpecho
