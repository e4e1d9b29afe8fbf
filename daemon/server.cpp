#include "server.hpp"

#include <signal.h>

#include <cstdint>

#include "log.hpp"
#include "loop.hpp"
#include "worker.hpp"

namespace tcpecho {

void prepare_process_signals() {
    // SIGPIPE must never end the daemon (sends use MSG_NOSIGNAL too, this covers the rest).
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Server::Server(Config config) : config_(std::move(config)) {
    const unsigned workers = effective_workers(config_);
    for (const ListenerConfig& lc : config_.listeners) {
        if (lc.proto == Protocol::Udp) {
            udp_listeners_.push_back(UdpListener::open(lc, workers));
        } else {
            listeners_.push_back(Listener::open(lc));
        }
    }
    std::vector<std::uint16_t> udp_ports;
    for (const auto& l : udp_listeners_) udp_ports.push_back(l->local().port());
    for (const auto& l : udp_listeners_) l->set_own_ports(udp_ports);
}

Server::~Server() = default;

StatsSnapshot Server::snapshot() const {
    StatsSnapshot s;
    for (const auto& w : workers_) s.accumulate(w->stats());
    return s;
}

int Server::run() {
    Loop control(Loop::Kind::Control);
    Async workers_done(control, [&] {
        for (const auto& w : workers_) {
            if (!w->finished()) return;
        }
        control.stop();
    });

    unsigned n = effective_workers(config_);
    for (unsigned i = 0; i < n; ++i) {
        workers_.push_back(std::make_unique<Worker>(i, listeners_, udp_listeners_, accept_gate_,
                                                    [&workers_done] { workers_done.send(); }));
    }
    for (const auto& l : listeners_) LOG_NOTICE("listening %s", l->describe().c_str());
    for (const auto& l : udp_listeners_) LOG_NOTICE("listening %s", l->describe().c_str());
    try {
        for (const auto& w : workers_) w->start();
    } catch (...) {
        // Stop the workers that did start before unwinding (their destructors join them).
        for (const auto& w : workers_) w->request_force_close();
        for (const auto& w : workers_) w->join();
        throw;
    }
    LOG_NOTICE("ready: %u workers, %zu listeners, config %s, loop %s", n, listeners_.size() + udp_listeners_.size(),
               config_.source.c_str(),
               std::string(to_string(loop_strategy_from_env())).c_str());

    bool draining = false;
    Timer drain_deadline(control, [&] {
        LOG_WARNING("drain_timeout (%llu ms) expired: closing the remaining connections",
                    static_cast<unsigned long long>(config_.drain_timeout_ms));
        for (const auto& w : workers_) w->request_force_close();
    });
    auto start_drain = [&](const char* signame) {
        if (draining) {
            LOG_NOTICE("%s again: closing the remaining connections now", signame);
            drain_deadline.stop();
            for (const auto& w : workers_) w->request_force_close();
            return;
        }
        draining = true;
        StatsSnapshot s = snapshot();
        LOG_NOTICE("%s: draining %llu connections (no new ones accepted; up to %llu ms)", signame,
                   static_cast<unsigned long long>(s.active_connections()),
                   static_cast<unsigned long long>(config_.drain_timeout_ms));
        for (const auto& w : workers_) w->request_drain();
        drain_deadline.start(static_cast<double>(config_.drain_timeout_ms) / 1000.0);
    };
    SignalWatcher on_term(control, SIGTERM, [&] { start_drain("SIGTERM"); });
    SignalWatcher on_int(control, SIGINT, [&] { start_drain("SIGINT"); });
    SignalWatcher on_usr1(control, SIGUSR1, [&] { LOG_NOTICE("counters %s", snapshot().format().c_str()); });
    SignalWatcher on_hup(control, SIGHUP, [] { LOG_WARNING("SIGHUP: configuration reload is not supported yet; ignored"); });

    control.run();
    for (const auto& w : workers_) w->join();

    StatsSnapshot s = snapshot();
    if (s.drain_forced_closes > 0) {
        LOG_WARNING("drain incomplete: force-closed %llu connections",
                    static_cast<unsigned long long>(s.drain_forced_closes));
    }
    LOG_NOTICE("stopped: counters %s", s.format().c_str());
    return 0;
}

}  // namespace tcpecho
