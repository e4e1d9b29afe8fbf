#include "memory_budget.hpp"

#include <algorithm>

namespace tcpecho {

std::size_t MemoryBudget::take_up_to(std::size_t n) noexcept {
    std::uint64_t cur = used_.load(std::memory_order_relaxed);
    for (;;) {
        std::uint64_t lim = limit();
        std::uint64_t left = lim > cur ? lim - cur : 0;
        std::uint64_t take = std::min<std::uint64_t>(n, left);
        if (take == 0) return 0;
        // Compare-and-swap, so two workers never both take the last free bytes.
        if (used_.compare_exchange_weak(cur, cur + take, std::memory_order_relaxed)) {
            return static_cast<std::size_t>(take);
        }
    }
}

}  // namespace tcpecho
