// What the TCP layer needs from the worker beyond WorkerContext: the buffer pool and the accept
// gate, and the decisions only the worker makes (admitting a new connection, freeing one,
// running out of descriptors or memory). Nothing in tcp/ includes the worker.
#pragma once

#include "daemon/base/worker_context.hpp"
#include "daemon/tcp/accept_gate.hpp"
#include "daemon/tcp/buffer.hpp"
#include "daemon/tcp/memory_budget.hpp"

namespace tcpecho {

class Acceptor;
class Connection;

class TcpContext : public WorkerContext {
public:
    BufferPool& buffers() noexcept { return buffers_; }
    AcceptGate& accept_gate() noexcept { return accept_gate_; }
    [[nodiscard]] bool memory_exhausted() const noexcept {
        return buffers_.budget() != nullptr && buffers_.budget()->exhausted();
    }

    // `fd` was accepted on `acceptor`: admit it (or close it).
    virtual void add_connection(Acceptor& acceptor, int fd) noexcept = 0;
    // A closed connection's object may go.
    virtual void free_connection(Connection* c) noexcept = 0;
    // Out of file descriptors: count and log; with `no_reserve`, also stop accepting briefly
    // (no spinning on a level-triggered listener). Returns whether accepting may go on.
    virtual bool on_fds_exhausted(Acceptor& acceptor, bool no_reserve) noexcept = 0;
    // max_buffer_memory reached (a connection could not get buffer memory, or the budget was
    // full at accept time): stop accepting, and poll until the budget has room again.
    virtual void on_memory_exhausted() noexcept = 0;

protected:
    TcpContext(Loop& loop, WorkerStats& counters, BufferPool& buffers, AcceptGate& accept_gate) noexcept
        : WorkerContext(loop, counters), buffers_(buffers), accept_gate_(accept_gate) {}
    ~TcpContext() = default;

private:
    BufferPool& buffers_;
    AcceptGate& accept_gate_;
};

}  // namespace tcpecho
