// Starts the real tcpechod binary on a config written by the test, follows its log, and
// reports what the kernel says about it (RSS, fds, CPU). Ends only the process it started.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tcpecho::test {

struct DaemonOptions {
    std::string config;                     // TOML text
    std::optional<unsigned> rlimit_nofile;  // RLIMIT_NOFILE for the daemon
    std::vector<std::string> extra_env;     // "NAME=value"
    bool journal_stream = false;            // set JOURNAL_STREAM to stderr's device:inode, as systemd does
};

class DaemonProcess {
public:
    // Starts tcpechod ($TCPECHOD) and waits for its "ready:" line; fails the test otherwise.
    explicit DaemonProcess(const DaemonOptions& options);
    explicit DaemonProcess(const std::string& config) : DaemonProcess(DaemonOptions{config, {}, {}, false}) {}
    ~DaemonProcess();
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    // Port of the listener with this name (from the "listening" log line).
    [[nodiscard]] std::uint16_t port(const std::string& name) const;

    void signal(int signum) const;
    // Waits for exit; returns the exit status, or nullopt on timeout / death by signal.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    // True once a log line containing `needle` appeared (waits up to `timeout`).
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout);
    [[nodiscard]] std::string log_text() const;
    // Sends SIGUSR1 and returns the value of counter `name` from the "counters" line it logs.
    std::uint64_t counter(const std::string& name);

    [[nodiscard]] long rss_kib() const;
    [[nodiscard]] int fd_count() const;
    // utime + stime in clock ticks.
    [[nodiscard]] long cpu_ticks() const;

private:
    void read_log();

    pid_t pid_ = -1;
    int log_fd_ = -1;
    std::string config_path_;
    std::thread reader_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    std::map<std::string, std::uint16_t> ports_;
    bool exited_ = false;
};

// Runs tcpechod with `args`; returns {exit status, stdout+stderr}.
std::pair<int, std::string> run_tcpechod(const std::vector<std::string>& args);
// Writes `text` to a fresh temporary file and returns its path.
std::string write_temp_file(const std::string& text, const std::string& suffix = ".toml");

}  // namespace tcpecho::test
