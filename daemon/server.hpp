// The daemon's main thread: opens the listeners, starts the workers, handles signals
// (SIGTERM/SIGINT drain, SIGUSR1 counters) and decides the exit status.
#pragma once

#include <memory>
#include <vector>

#include "accept_gate.hpp"
#include "config.hpp"
#include "listener.hpp"
#include "stats.hpp"
#include "udp_listener.hpp"

namespace tcpecho {

class Worker;

class Server {
public:
    // Opens every listener (a UDP one with a socket per worker); throws std::runtime_error
    // when one cannot be bound.
    explicit Server(Config config);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves until SIGTERM/SIGINT and the drain; returns the process exit status.
    int run();

    [[nodiscard]] StatsSnapshot snapshot() const;

private:
    Config config_;
    std::vector<std::shared_ptr<Listener>> listeners_;
    std::vector<std::shared_ptr<UdpListener>> udp_listeners_;
    AcceptGate accept_gate_;
    std::vector<std::unique_ptr<Worker>> workers_;
};

// Blocks the signals the main loop reads from a signalfd, and ignores SIGPIPE; call before
// any thread starts so every thread inherits the mask.
void prepare_process_signals();

}  // namespace tcpecho
