// Spreads TCP connections over the workers by how many each serves now.
//
// Every worker watches every listening socket (EPOLLEXCLUSIVE), and whichever wakes accepts:
// the kernel wakes the most recently waiting one first, so a burst of connections lands on
// one or two workers (measured: 100 connections split 58/42 to 16/84 over two workers). Echo
// connections are long-lived, so accept order says nothing about load. After accepting, a
// worker asks assign() who should serve the connection: the worker with the fewest, itself on
// a tie. Another worker gets the descriptor handed over (Worker::request_hand_off: a queue and
// one wake-up, at accept time only; no cost per message). The same works for a socket systemd
// passed (one shared socket), where per-worker SO_REUSEPORT sockets could not exist, and
// unlike a reuseport hash it balances by live connections rather than by 4-tuple
// (1,000 connections hashed over 4 sockets leave the fullest ~14 % above the mean).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace tcpecho {

class Balancer {
public:
    explicit Balancer(unsigned workers);

    // The worker that is to serve a connection `self` accepted, charged with it now (so
    // connections still on their way count): the one with the fewest, `self` on a tie.
    [[nodiscard]] unsigned assign(unsigned self) noexcept;
    // One connection charged to `worker` has ended (or was never served).
    void release(unsigned worker) noexcept;
    [[nodiscard]] std::uint32_t load(unsigned worker) const noexcept;
    [[nodiscard]] unsigned workers() const noexcept { return workers_; }

private:
    unsigned workers_;
    std::unique_ptr<std::atomic<std::uint32_t>[]> load_;
};

}  // namespace tcpecho
