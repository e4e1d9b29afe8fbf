#include "units.hpp"

#include <charconv>
#include <string>

namespace tcpecho {

namespace {

struct NumberUnit {
    std::uint64_t number;
    std::string unit;  // lower-cased, spaces before it skipped
};

std::optional<NumberUnit> split_number_unit(std::string_view text) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end == text.data()) return std::nullopt;
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    std::string lower;
    for (char ch : unit) lower += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    return NumberUnit{n, lower};
}

std::optional<std::uint64_t> scaled(std::uint64_t n, std::uint64_t mult) noexcept {
    if (mult == 0 || n > UINT64_MAX / mult) return std::nullopt;
    return n * mult;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
    auto parsed = split_number_unit(text);
    if (!parsed) return std::nullopt;
    const std::string& u = parsed->unit;
    std::uint64_t mult = 0;
    if (u.empty() || u == "b") mult = 1;
    else if (u == "k" || u == "kb" || u == "kib") mult = 1ULL << 10;
    else if (u == "m" || u == "mb" || u == "mib") mult = 1ULL << 20;
    else if (u == "g" || u == "gb" || u == "gib") mult = 1ULL << 30;
    return scaled(parsed->number, mult);
}

std::optional<std::uint64_t> parse_duration_us(std::string_view text) noexcept {
    auto parsed = split_number_unit(text);
    if (!parsed) return std::nullopt;
    const std::string& u = parsed->unit;
    std::uint64_t mult = 0;
    if (u == "us") mult = 1;
    else if (u == "ms") mult = 1'000;
    else if (u == "s" || u.empty()) mult = 1'000'000;
    else if (u == "m" || u == "min") mult = 60'000'000;
    else if (u == "h") mult = 3'600'000'000ULL;
    return scaled(parsed->number, mult);
}

}  // namespace tcpecho
