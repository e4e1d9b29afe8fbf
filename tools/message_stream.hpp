// The bytes one connection puts on the wire: a sequence of messages framed for the server's
// mode, with payloads from a PayloadStream and sizes drawn from a seeded range. The sender and
// the verifier each hold one, built from the same shape and seed, so the verifier regenerates
// exactly what was sent and never stores it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/framer.hpp"
#include "tools/payload.hpp"

namespace tcpecho {

struct MessageShape {
    FramingMode mode = FramingMode::Raw;
    // Payload bytes per message, drawn uniformly from [size_min, size_max] per message. In
    // fixed mode both equal the frame size; the wire adds 4 bytes (length) or 1 ('\n', line).
    std::uint64_t size_min = 1024;
    std::uint64_t size_max = 1024;

    [[nodiscard]] std::uint64_t overhead() const noexcept {
        return mode == FramingMode::Length ? kLengthHeaderSize : mode == FramingMode::Line ? 1 : 0;
    }
    [[nodiscard]] std::uint64_t largest_message() const noexcept { return size_max + overhead(); }
};

class MessageStream {
public:
    MessageStream(const MessageShape& shape, std::uint64_t seed) noexcept;

    [[nodiscard]] std::uint64_t message_index() const noexcept { return index_; }
    // Wire size of the current message, framing included.
    [[nodiscard]] std::uint64_t message_size() const noexcept { return size_; }
    [[nodiscard]] std::uint64_t position() const noexcept { return pos_; }  // within the message
    [[nodiscard]] std::uint64_t remaining() const noexcept { return size_ - pos_; }
    [[nodiscard]] std::uint64_t stream_offset() const noexcept { return base_ + pos_; }
    [[nodiscard]] bool at_end() const noexcept { return pos_ == size_; }

    // Moves to the start of the next message. Only at_end().
    void next_message() noexcept;
    // Writes the next n bytes of the current message (n <= remaining()).
    void fill(std::byte* out, std::size_t n) noexcept;
    // Compares the next n bytes of the current message (n <= remaining()). Returns the index of
    // the first mismatch (the stream then stands at that byte), or n.
    std::size_t verify(const std::byte* got, std::size_t n) noexcept;
    // Moves back within the current message (after a partial send). to <= position().
    void rewind_to(std::uint64_t to) noexcept;

private:
    enum class Part : std::uint8_t { Header, Payload, Delimiter };
    // Which part byte `pos` of the current message is in, and how many bytes of it remain.
    [[nodiscard]] Part part_at(std::uint64_t pos, std::uint64_t& left) const noexcept;
    void header_bytes(std::byte out[kLengthHeaderSize]) const noexcept;
    void draw_size() noexcept;

    MessageShape shape_;
    PayloadStream payload_;
    std::uint64_t size_rng_;
    std::uint64_t index_ = 0;
    std::uint64_t size_ = 0;
    std::uint64_t pos_ = 0;
    std::uint64_t base_ = 0;          // stream offset of the current message
    std::uint64_t payload_base_ = 0;  // payload stream offset of the current message's payload
};

}  // namespace tcpecho
