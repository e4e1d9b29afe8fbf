#include "daemon/base/stats.hpp"

namespace tcpecho {

void StatsSnapshot::accumulate(const WorkerStats& s) noexcept {
#define TCPECHO_ACCUMULATE(name, help) name += s.name.get();
    TCPECHO_COUNTERS(TCPECHO_ACCUMULATE)
#undef TCPECHO_ACCUMULATE
}

std::string StatsSnapshot::format() const {
    std::string out = "connections_active=" + std::to_string(active_connections());
#define TCPECHO_FORMAT(name, help) out += " " #name "=" + std::to_string(name);
    TCPECHO_COUNTERS(TCPECHO_FORMAT)
#undef TCPECHO_FORMAT
    return out;
}

}  // namespace tcpecho
