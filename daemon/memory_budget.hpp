// max_buffer_memory: one budget for the buffer memory of every TCP connection on every worker.
//
// What is counted is buffer storage that has been written to, rounded up to pages: that is
// what becomes resident. A pool buffer is 1 MiB of address space, but one holding a 64-byte
// partial frame costs one page, so thousands of slow peers sending a few bytes each do not
// exhaust the budget, while peers that make tcpechod hold megabytes (by not reading their
// echo, or by sending huge frames) do. Pages are charged right after recv() wrote them
// (BufferPool::charge_written), and no recv() starts while the budget is exhausted, so the
// budget is passed by at most one read per worker.
//
// Thread-safe: workers take and give back concurrently; the limit changes on reload.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tcpecho {

class MemoryBudget {
public:
    explicit MemoryBudget(std::uint64_t limit) noexcept : limit_(limit) {}
    MemoryBudget(const MemoryBudget&) = delete;
    MemoryBudget& operator=(const MemoryBudget&) = delete;

    void set_limit(std::uint64_t limit) noexcept { limit_.store(limit, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }

    // Charges memory that is in use now (it may pass the limit: see the class comment).
    void take(std::size_t n) noexcept { used_.fetch_add(n, std::memory_order_relaxed); }
    void give_back(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

    [[nodiscard]] bool exhausted() const noexcept { return used() >= limit(); }
    // Paused reads and accepts go on once use is down to 7/8 of the limit, not at the first
    // free page: resuming right at the edge would pause again at once.
    [[nodiscard]] bool may_resume() const noexcept { return used() <= limit() - limit() / 8; }
    // Above 3/4 of the limit, emptied buffers are freed instead of pooled: a worker's idle pool
    // must not hold budget that another worker's connections are waiting for.
    [[nodiscard]] bool tight() const noexcept { return used() > limit() - limit() / 4; }

private:
    std::atomic<std::uint64_t> limit_;
    std::atomic<std::uint64_t> used_{0};
};

}  // namespace tcpecho
