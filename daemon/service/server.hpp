// The daemon's main thread: opens the listeners, starts the workers, handles signals
// (SIGTERM/SIGINT drain, SIGHUP reload, SIGUSR1 counters), talks to the service manager
// (sd_notify: readiness, status, reload, watchdog) and decides the exit status.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/balancer.hpp"
#include "daemon/base/config.hpp"
#include "daemon/base/stats.hpp"
#include "daemon/metrics/metrics_endpoint.hpp"
#include "daemon/service/listener_table.hpp"
#include "daemon/service/notify.hpp"
#include "daemon/service/socket_activation.hpp"
#include "daemon/tcp/accept_gate.hpp"
#include "daemon/tcp/memory_budget.hpp"

namespace tcpecho {

class Worker;

class Server {
public:
    // Reads the configuration again (SIGHUP); throws ConfigError.
    using ConfigLoader = std::function<Config()>;

    // Opens every listener (a UDP one with a socket per worker), or takes the sockets systemd
    // passed. Throws ActivationError when a passed socket matches no listener, and
    // std::runtime_error when a listener cannot be opened.
    Server(Config config, ConfigLoader reload, std::vector<InheritedSocket> inherited);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves until SIGTERM/SIGINT and the drain; returns the process exit status.
    int run();

    [[nodiscard]] StatsSnapshot snapshot() const;
    // "250,251,249,250": each worker's active TCP connections, for the SIGUSR1 line.
    [[nodiscard]] std::string active_per_worker() const;
    // The Prometheus text exposition (0.0.4) of the counters and state. Thread-safe: the
    // workers call it to answer GET /metrics.
    [[nodiscard]] std::string render_metrics() const;

private:
    void log_listeners(const ListenerSet& set, const char* verb) const;
    void reload();
    // Called on the main thread whenever a worker finished or applied a listener set.
    void on_worker_event();
    // Sends WATCHDOG=1 if every worker loop has turned recently.
    void watchdog_tick();
    [[nodiscard]] std::string status_text() const;

    Config config_;
    ConfigLoader reload_;
    ListenerTable table_;
    AcceptGate accept_gate_;
    MemoryBudget memory_budget_;  // before workers_: their buffer pools give back to it at exit
    Notifier notifier_;
    std::unique_ptr<Balancer> balancer_;  // before workers_: they use it until they are gone
    std::shared_ptr<ListenSocket> metrics_socket_;  // [metrics]; null when off
    std::shared_ptr<MetricsSource> metrics_source_;
    double start_time_s_;  // Unix time, for tcpechod_start_time_seconds
    // The last reload's outcome, read by render_metrics() on worker threads.
    std::atomic<bool> last_reload_ok_{true};
    std::atomic<double> last_reload_time_s_;
    std::vector<std::unique_ptr<Worker>> workers_;
    class Loop* control_ = nullptr;
    bool draining_ = false;

    // Reload state (main thread only).
    std::uint64_t reloads_ok_ = 0;
    std::uint64_t reloads_failed_ = 0;
    std::string last_reload_error_;  // empty after a successful reload
    bool reload_in_flight_ = false;  // sent to the workers, not acknowledged by all yet
    // A SIGHUP that came while one was in flight: run once that one is done. Reloads never
    // overlap, so a socket the previous one dropped is closed before the next one may bind
    // its address again, and READY=1 always answers the RELOADING=1 before it.
    bool reload_queued_ = false;
    // TCP sockets a reload removed, closed once every worker has applied `generation`.
    struct PendingClose {
        std::uint64_t generation;
        std::vector<std::shared_ptr<ListenSocket>> sockets;
    };
    std::vector<PendingClose> pending_close_;
    std::vector<unsigned> stale_workers_;  // for the watchdog's log line
};

// Blocks the signals the main loop reads from a signalfd, and ignores SIGPIPE; call before
// any thread starts so every thread inherits the mask.
void prepare_process_signals();

}  // namespace tcpecho
