#include "daemon/balancer.hpp"

namespace tcpecho {

Balancer::Balancer(unsigned workers)
    : workers_(workers), load_(std::make_unique<std::atomic<std::uint32_t>[]>(workers)) {}

unsigned Balancer::assign(unsigned self) noexcept {
    // Two workers assigning at once may both pick the same one: one connection of imbalance,
    // corrected by the next assignments. No lock on the accept path.
    unsigned best = self;
    std::uint32_t best_load = load_[self].load(std::memory_order_relaxed);
    for (unsigned w = 0; w < workers_; ++w) {
        const std::uint32_t l = load_[w].load(std::memory_order_relaxed);
        if (l < best_load) {
            best = w;
            best_load = l;
        }
    }
    load_[best].fetch_add(1, std::memory_order_relaxed);
    return best;
}

void Balancer::release(unsigned worker) noexcept { load_[worker].fetch_sub(1, std::memory_order_relaxed); }

std::uint32_t Balancer::load(unsigned worker) const noexcept { return load_[worker].load(std::memory_order_relaxed); }

}  // namespace tcpecho
