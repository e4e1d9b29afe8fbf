#include "lib/units.hpp"

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
    // An optional decimal fraction ("1.5s", "0.25"): scaled exactly, in integers, below.
    std::string_view fraction;
    auto dot = text.find('.');
    std::string joined;
    if (dot != std::string_view::npos) {
        std::size_t end = dot + 1;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
        fraction = text.substr(dot + 1, end - dot - 1);
        if (fraction.empty() || fraction.size() > 9) return std::nullopt;
        joined = std::string(text.substr(0, dot)) + std::string(text.substr(end));
        text = joined;
    }
    auto parsed = split_number_unit(text);
    if (!parsed) return std::nullopt;
    const std::string& u = parsed->unit;
    std::uint64_t mult = 0;
    if (u == "us") mult = 1;
    else if (u == "ms") mult = 1'000;
    else if (u == "s" || u.empty()) mult = 1'000'000;
    else if (u == "m" || u == "min") mult = 60'000'000;
    else if (u == "h") mult = 3'600'000'000ULL;
    auto whole = scaled(parsed->number, mult);
    if (!whole || fraction.empty()) return whole;
    // fraction digits d1..dk mean (d1..dk / 10^k) * mult; must come out in whole microseconds.
    std::uint64_t digits = 0;
    std::uint64_t scale = 1;
    for (char c : fraction) {
        digits = digits * 10 + static_cast<std::uint64_t>(c - '0');
        scale *= 10;
    }
    // digits < 10^9 and mult <= 3.6e9: the product fits in 64 bits.
    if ((digits * mult) % scale != 0) return std::nullopt;
    const std::uint64_t part = digits * mult / scale;
    if (*whole > UINT64_MAX - part) return std::nullopt;
    return *whole + part;
}

}  // namespace tcpecho
