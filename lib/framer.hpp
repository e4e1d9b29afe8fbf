// Framing rules, as pure functions over bytes: no sockets, no allocation. Shared by the daemon,
// the probe and the fuzzers, so there is one definition of what a frame is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tcpecho {

enum class FramingMode : std::uint8_t {
    Raw,     // no frames: every byte is echoed as soon as it arrives (RFC 862)
    Fixed,   // frames of exactly frame_size bytes
    Length,  // 4-byte big-endian payload length, then the payload
    Line,    // bytes up to and including '\n'
};

std::string_view to_string(FramingMode mode) noexcept;
std::optional<FramingMode> parse_framing_mode(std::string_view name) noexcept;

inline constexpr std::size_t kLengthHeaderSize = 4;

struct FrameResult {
    enum class Status : std::uint8_t {
        Complete,  // a whole frame of `size` bytes starts at the front of the input
        NeedMore,  // the front frame is not complete yet
        TooLarge,  // the front frame would exceed max_frame (`size` = what it declared or reached)
    };
    Status status;
    std::uint64_t size;
};

// Stateless apart from the caller-held `scanned` cursor, which lets line mode resume scanning
// where it stopped instead of rescanning a long partial line on every read.
class Framer {
public:
    Framer(FramingMode mode, std::uint32_t frame_size, std::uint32_t max_frame) noexcept
        : mode_(mode), frame_size_(frame_size), max_frame_(max_frame) {}

    // `input` starts at a frame boundary. `scanned` is how many of its bytes an earlier call
    // already searched without finding a frame end; it is reset when a frame completes.
    // In raw mode any non-empty input is one "frame".
    [[nodiscard]] FrameResult extract(std::span<const std::byte> input,
                                      std::size_t& scanned) const noexcept;

    [[nodiscard]] FramingMode mode() const noexcept { return mode_; }
    [[nodiscard]] std::uint32_t frame_size() const noexcept { return frame_size_; }
    [[nodiscard]] std::uint32_t max_frame() const noexcept { return max_frame_; }
    // Largest frame this framer can accept, headers and delimiter included.
    [[nodiscard]] std::uint64_t largest_frame() const noexcept;

private:
    FramingMode mode_;
    std::uint32_t frame_size_;
    std::uint32_t max_frame_;
};

// Big-endian 32-bit payload length as used by length mode.
std::uint32_t read_length_header(const std::byte* p) noexcept;
void write_length_header(std::byte* p, std::uint32_t length) noexcept;

}  // namespace tcpecho
