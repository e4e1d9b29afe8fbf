// max_buffer_memory: one budget for the buffer memory of every TCP connection on every worker.
//
// What is counted is buffer storage that has been written to, rounded up to pages: that is
// what becomes resident. A pool buffer is 1 MiB of address space, but one holding a 64-byte
// partial frame costs one page, so thousands of slow peers sending a few bytes each do not
// exhaust the budget, while peers that make tcpechod hold megabytes (by not reading their
// echo, or by sending huge frames) do. Before a recv() may write pages for the first time they
// are taken from the budget, as many as it has room for (BufferPool::begin_read: the read is
// shortened to them); those the recv() did not write are given back after it. So reads never
// pass the limit, also with several workers reading at once.
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

    // The unit memory becomes resident in, and that take_up_to() grants.
    static constexpr std::size_t kPage = 4096;

    // Charges memory that is in use already, limit or not (a buffer moved to new storage).
    void take(std::size_t n) noexcept { used_.fetch_add(n, std::memory_order_relaxed); }
    void give_back(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }
    // Charges up to n bytes without passing the limit: all of n if there is room for it, else
    // the whole pages there is room for (0 when exhausted or paused). Returns what was charged.
    // Finding no room for a page pauses the budget (see exhausted()).
    [[nodiscard]] std::size_t take_up_to(std::size_t n) noexcept {
        if (!try_resume()) return 0;
        std::uint64_t current = used_.load(std::memory_order_relaxed);
        for (;;) {
            const std::uint64_t lim = limit();
            const std::uint64_t room = lim > current ? lim - current : 0;
            const std::uint64_t grant = n <= room ? n : room / kPage * kPage;
            if (grant == 0) {
                paused_.store(true, std::memory_order_relaxed);
                return 0;
            }
            if (used_.compare_exchange_weak(current, current + grant, std::memory_order_relaxed)) {
                return static_cast<std::size_t>(grant);
            }
        }
    }

    // At the budget: from the moment a read found no room for a page (or an accept found less
    // than a page left) until use is down to 7/8 of the limit, for every worker at once. Not
    // "less than a page left right now": at the limit pages come and go by the read (a read
    // gives back what it did not write), and a worker that saw a free page would accept and
    // serve a new connection while the others wait (seen as a flake of integration-budget).
    // A pause set by a read that went on in pages it already had (so no worker polls for the
    // end of it) ends here too, at the same 7/8.
    [[nodiscard]] bool exhausted() noexcept {
        if (!try_resume()) return true;
        const std::uint64_t u = used(), lim = limit();
        if (u < lim && lim - u >= kPage) return false;
        paused_.store(true, std::memory_order_relaxed);
        return true;
    }
    // Ends the pause once use is down to 7/8 of the limit, not at the first free page:
    // resuming right at the edge would pause again at once. True when not paused (any more).
    [[nodiscard]] bool try_resume() noexcept {
        if (!paused()) return true;
        if (used() > limit() - limit() / 8) return false;
        paused_.store(false, std::memory_order_relaxed);
        return true;
    }
    [[nodiscard]] bool paused() const noexcept { return paused_.load(std::memory_order_relaxed); }
    // Above 3/4 of the limit, emptied buffers are freed instead of pooled: a worker's idle pool
    // must not hold budget that another worker's connections are waiting for.
    [[nodiscard]] bool tight() const noexcept { return used() > limit() - limit() / 4; }

private:
    std::atomic<std::uint64_t> limit_;
    std::atomic<std::uint64_t> used_{0};
    std::atomic<bool> paused_{false};
};

}  // namespace tcpecho
