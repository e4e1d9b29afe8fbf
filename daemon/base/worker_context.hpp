// What a data path (tcp/, udp/) may use of the worker thread that runs it: its loop, its
// counters and its budget of log lines a peer can trigger. The worker implements it, so
// nothing below the worker includes the worker. tcp/tcp_context.hpp adds the TCP part.
#pragma once

#include <cstdint>

#include "daemon/base/log.hpp"
#include "daemon/base/loop.hpp"
#include "daemon/base/stats.hpp"

namespace tcpecho {

class WorkerContext {
public:
    WorkerContext(const WorkerContext&) = delete;
    WorkerContext& operator=(const WorkerContext&) = delete;

    Loop& loop() noexcept { return loop_; }
    WorkerStats& counters() noexcept { return counters_; }
    // Budget for log lines a peer can trigger (see LogRateLimit).
    [[nodiscard]] bool may_log_peer_event() noexcept { return peer_log_.allow(loop_.now_ms()); }

protected:
    // The references are only stored here: the owner may construct them after this base.
    WorkerContext(Loop& loop, WorkerStats& counters) noexcept : loop_(loop), counters_(counters) {}
    ~WorkerContext() = default;

private:
    Loop& loop_;
    WorkerStats& counters_;
    LogRateLimit peer_log_{20};
};

}  // namespace tcpecho
