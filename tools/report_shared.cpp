#include "tools/report_shared.hpp"

namespace tcpecho::probe {

std::string duration_text(std::uint64_t ns) {
    char b[32];
    if (ns < 1'000'000) {
        std::snprintf(b, sizeof b, "%.1f us", static_cast<double>(ns) / 1e3);
    } else if (ns < 10'000'000'000ULL) {
        std::snprintf(b, sizeof b, "%.2f ms", static_cast<double>(ns) / 1e6);
    } else {
        std::snprintf(b, sizeof b, "%.2f s", static_cast<double>(ns) / 1e9);
    }
    return b;
}

double per_second(std::uint64_t n, double seconds) noexcept {
    return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

std::string amount_text(const Options& o, const char* one, const char* many) {
    if (o.time_us) {
        char b[32];
        std::snprintf(b, sizeof b, " for %g s", static_cast<double>(*o.time_us) / 1e6);
        return many + std::string(b);
    }
    if (o.count) return std::to_string(*o.count) + " " + (*o.count == 1 ? one : many);
    return {};
}

std::string payload_size_text(const Options& o) {
    const MessageShape& s = o.shape;
    std::string text = s.size_min == s.size_max ? std::to_string(s.size_min)
                                                : std::to_string(s.size_min) + "-" + std::to_string(s.size_max);
    return text + (s.size_min == s.size_max && s.size_min == 1 ? " byte" : " bytes");
}

void print_latency(std::FILE* out, const LogLinearHistogram& lat, const char* note) {
    if (lat.count() == 0) return;
    std::fprintf(out, "latency:  min %s, p50 %s, p90 %s, p99 %s, p99.9 %s, max %s%s\n", duration_text(lat.min()).c_str(),
                 duration_text(lat.quantile(0.5)).c_str(), duration_text(lat.quantile(0.9)).c_str(),
                 duration_text(lat.quantile(0.99)).c_str(), duration_text(lat.quantile(0.999)).c_str(),
                 duration_text(lat.max()).c_str(), note);
}

void print_rate(std::FILE* out, double seconds, std::uint64_t count, const char* unit, std::uint64_t bytes) {
    std::fprintf(out, "rate:     %.3f s, %.0f %s/s, %.2f MiB/s each way\n", seconds, per_second(count, seconds), unit,
                 per_second(bytes, seconds) / (1 << 20));
}

void target_json(JsonWriter& j, const Options& o, const std::string& peer) {
    j.begin_object("target");
    j.value("host", o.host);
    j.value("port", o.port);
    j.value("address", peer);
    j.end_object();
}

void latency_json(JsonWriter& j, const LogLinearHistogram& lat, bool from_scheduled_time) {
    j.begin_object("latency_us");
    j.value("count", lat.count());
    auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
    j.value("min", us(lat.min()));
    j.value("mean", lat.mean() / 1e3);
    j.value("p50", us(lat.quantile(0.5)));
    j.value("p90", us(lat.quantile(0.9)));
    j.value("p99", us(lat.quantile(0.99)));
    j.value("p99_9", us(lat.quantile(0.999)));
    j.value("max", us(lat.max()));
    j.value("from_scheduled_time", from_scheduled_time);
    j.end_object();
}

}  // namespace tcpecho::probe
