// One harness for the framer targets (fuzz_framer_fixed, _length, _line).
//
// Input: a 4-byte header, then the byte stream a peer sends.
//   bytes 0-1  the framer's parameter, little-endian: fixed mode frame_size = 1 + (p % 1024);
//              length and line mode max_frame = p (0xFFFF stands for 0xFFFFFFFF)
//   byte 2     bits 0-2: largest chunk (1, 2, 3, 7, 16, 64, 512 or 4096 bytes per read);
//              all of bytes 2-3 seed the chunk sizes
//   byte 3     bit 7: the echo is sent in random partial writes (else whole)
// The stream is framed twice: whole, as one read, and as the daemon sees it over many reads
// (Connection::frame_input: a growing buffer, `ready` bytes of whole frames at its front,
// the `scanned` cursor kept across reads, and flush() consuming only what the socket took).
// Both must give the same frames and stop at the same too-large frame, and every result must
// match the definition of the mode (checked against the stream bytes themselves).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/framer.hpp"

namespace tcpecho::fuzz {

void fuzz_framer(FramingMode mode, const std::uint8_t* data, std::size_t size);

}  // namespace tcpecho::fuzz
