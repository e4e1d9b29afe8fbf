// payload_speed: single-thread speed of the probe's payload generation and verification.
//
// The probe pays two passes per echoed byte: PayloadStream::fill when it sends (the bytes
// are generated, never stored) and PayloadStream::verify when the echo comes back (the same
// bytes are regenerated and compared). The target is fill + verify >= 5 GB/s per core, so
// that the probe is never what limits a benchmark. This measures, on one thread:
//
//   fill          bytes / time of PayloadStream::fill over a buffer of CHUNK bytes
//   verify        bytes / time of PayloadStream::verify of a buffer holding the right bytes
//   fill+verify   one stream fills the buffer, a second one (same seed) verifies it: the
//                 per-byte work of the probe, measured as one loop (the target's number;
//                 the harmonic combination 1 / (1/fill + 1/verify) is printed next to it)
//
// for chunks of 64 B, 1 KiB, 64 KiB and 1 MiB (the probe's scratch buffers are 1 MiB),
// for the raw payload (PayloadStream(seed)) and the line-mode one (PayloadStream(seed, true),
// no '\n' in the bytes), and for MessageStream (what the probe actually calls: framing on
// top of the payload) in raw and length mode, one call per message of CHUNK bytes.
//
// GB/s are 10^9 bytes per second. Each cell gets --ms milliseconds (default 500) split into
// --rounds windows (default 5); the rounds go over all cells in turn, so that a slow spell of
// the machine touches many cells a little rather than one entirely. Printed: the median over
// the rounds and, in brackets, the best round (other work on a shared machine only ever makes
// a window slower). Exit status 1 if a verification ever fails (a broken benchmark).
//
// Build (bench/payload_speed.sh does this):
//   g++ -O2 -std=c++20 -I. -Idaemon bench/payload_speed.cpp tools/message_stream.cpp daemon/framer.cpp
// Usage: payload_speed [--ms MS_PER_CELL] [--rounds N] [--quick]   (--quick: 100 ms per cell)
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/framer.hpp"
#include "tools/message_stream.hpp"
#include "tools/payload.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using tcpecho::FramingMode;
using tcpecho::MessageShape;
using tcpecho::MessageStream;
using tcpecho::PayloadStream;

int g_rounds = 5;
double g_window_s = 0.1;
std::uint64_t g_sink = 0;
bool g_failed = false;

// Makes the compiler assume the buffer is read and written here: fill cannot be dropped,
// verify cannot be hoisted out of the loop.
inline void clobber(void* p) { asm volatile("" : : "r"(p) : "memory"); }

// The library calls, out of line and opaque to the optimiser, so that their code is the same
// whatever loop calls them (as in the probe, where Session calls MessageStream's out-of-line
// functions, which inline PayloadStream's).
__attribute__((noipa)) void payload_fill(PayloadStream& s, std::byte* out, std::size_t n) { s.fill(out, n); }
__attribute__((noipa)) std::size_t payload_verify(PayloadStream& s, const std::byte* got, std::size_t n) {
    return s.verify(got, n);
}

struct Cell {
    double median_gbs = 0;
    double best_gbs = 0;
};

// One measured quantity: `step` processes `bytes_per_step` bytes. Calibrated once to take
// about one window, then measured in one window per round: rounds go over all cells in turn,
// so a slow spell of the machine (they last seconds) hits many cells a little instead of
// one cell entirely.
class Measure {
public:
    template <class Step>
    Measure(std::size_t bytes_per_step, Step step) : bytes_(bytes_per_step), step_(std::move(step)) {}

    void calibrate() {
        std::uint64_t steps = 1;
        for (;;) {
            double s = run(steps);
            if (s > 0.005) {
                steps_ = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(steps) * g_window_s / s));
                return;
            }
            steps *= 4;
        }
    }
    void window() {
        double s = run(steps_);
        gbs_.push_back(static_cast<double>(steps_) * static_cast<double>(bytes_) / s / 1e9);
    }
    [[nodiscard]] Cell cell() const {
        std::vector<double> v = gbs_;
        std::sort(v.begin(), v.end());
        return Cell{v[v.size() / 2], v.back()};
    }

private:
    double run(std::uint64_t steps) {
        auto t0 = Clock::now();
        for (std::uint64_t i = 0; i < steps; ++i) step_();
        return std::chrono::duration<double>(Clock::now() - t0).count();
    }
    std::size_t bytes_;
    std::function<void()> step_;  // the call is per step of >= 64 bytes: noise next to the work
    std::uint64_t steps_ = 1;
    std::vector<double> gbs_;
};

std::string chunk_text(std::size_t n) {
    if (n >= (1U << 20)) return std::to_string(n >> 20) + " MiB";
    if (n >= 1024) return std::to_string(n >> 10) + " KiB";
    return std::to_string(n) + " B";
}

// A step does `reps` calls of CHUNK bytes (at least 64 KiB per step), so that the indirect
// call into the step is noise even for 64-byte chunks.
std::size_t reps_for(std::size_t chunk) { return std::max<std::size_t>(1, (64U << 10) / chunk); }

struct Row {
    std::string what;
    std::size_t chunk;
    std::vector<Measure> m;  // fill, verify, fill+verify
};

struct PayloadState {
    explicit PayloadState(bool line, std::size_t chunk)
        : buf(chunk), f(42, line), v(7, line), tx(9, line), rx(9, line) {
        PayloadStream src(7, line);
        src.fill(buf.data(), chunk);  // what `v` verifies, again and again from offset 0
        verify_buf = buf;
    }
    std::vector<std::byte> buf, verify_buf;
    PayloadStream f, v, tx, rx;
};

Row payload_row(bool line, std::size_t chunk, std::vector<std::unique_ptr<PayloadState>>& keep) {
    keep.push_back(std::make_unique<PayloadState>(line, chunk));
    PayloadState* st = keep.back().get();
    const std::size_t reps = reps_for(chunk);
    Row row{line ? "PayloadStream line" : "PayloadStream", chunk, {}};
    row.m.emplace_back(chunk * reps, [st, chunk, reps] {
        for (std::size_t r = 0; r < reps; ++r) {
            payload_fill(st->f, st->buf.data(), chunk);
            clobber(st->buf.data());
        }
    });
    row.m.emplace_back(chunk * reps, [st, chunk, reps] {
        for (std::size_t r = 0; r < reps; ++r) {
            st->v.seek(0);
            clobber(st->verify_buf.data());
            std::size_t ok = payload_verify(st->v, st->verify_buf.data(), chunk);
            if (ok != chunk) g_failed = true;
            g_sink += ok;
        }
    });
    // What the probe does per echoed byte, on a continuing stream: generate, then regenerate
    // and compare.
    row.m.emplace_back(chunk * reps, [st, chunk, reps] {
        for (std::size_t r = 0; r < reps; ++r) {
            payload_fill(st->tx, st->buf.data(), chunk);
            clobber(st->buf.data());
            std::size_t ok = payload_verify(st->rx, st->buf.data(), chunk);
            if (ok != chunk) g_failed = true;
            g_sink += ok;
        }
    });
    return row;
}

struct MessageState {
    MessageState(const MessageShape& shape, std::size_t size)
        : buf(size), f(shape, 42), start(shape, 7), tx(shape, 9), rx(shape, 9) {
        MessageStream src(shape, 7);
        src.fill(buf.data(), size);
        verify_buf = buf;
    }
    std::vector<std::byte> buf, verify_buf;
    MessageStream f;
    const MessageStream start;  // verify: a fresh copy at message 0 each time (a value type)
    MessageStream tx, rx;
};

// One fill()/verify() call per message of `size` wire bytes, next_message() in between, as
// the probe's sender and verifier do when a message fits in its 1 MiB scratch buffer.
Row message_row(FramingMode mode, std::size_t size, std::vector<std::unique_ptr<MessageState>>& keep) {
    MessageShape shape;
    shape.mode = mode;
    shape.size_min = shape.size_max = size - shape.overhead();
    keep.push_back(std::make_unique<MessageState>(shape, size));
    MessageState* st = keep.back().get();
    const std::size_t reps = reps_for(size);
    Row row{mode == FramingMode::Length ? "MessageStream length" : "MessageStream raw", size, {}};
    row.m.emplace_back(size * reps, [st, size, reps] {
        for (std::size_t r = 0; r < reps; ++r) {
            st->f.fill(st->buf.data(), size);
            st->f.next_message();
            clobber(st->buf.data());
        }
    });
    row.m.emplace_back(size * reps, [st, size, reps] {
        for (std::size_t r = 0; r < reps; ++r) {
            MessageStream v = st->start;
            clobber(st->verify_buf.data());
            std::size_t ok = v.verify(st->verify_buf.data(), size);
            if (ok != size) g_failed = true;
            g_sink += ok + v.position();
        }
    });
    row.m.emplace_back(size * reps, [st, size, reps] {
        for (std::size_t r = 0; r < reps; ++r) {
            st->tx.fill(st->buf.data(), size);
            st->tx.next_message();
            clobber(st->buf.data());
            std::size_t ok = st->rx.verify(st->buf.data(), size);
            if (ok != size) g_failed = true;
            st->rx.next_message();
            g_sink += ok;
        }
    });
    return row;
}

}  // namespace

#ifndef PAYLOAD_SPEED_FLAGS
#define PAYLOAD_SPEED_FLAGS "?"
#endif

int main(int argc, char** argv) {
    double ms_per_cell = 500;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            ms_per_cell = 100;
        } else if (std::strcmp(argv[i], "--ms") == 0 && i + 1 < argc) {
            ms_per_cell = std::atof(argv[++i]);
        } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            g_rounds = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: payload_speed [--ms MS_PER_CELL] [--rounds N] [--quick]\n");
            return 2;
        }
    }
    if (!(ms_per_cell >= 1) || g_rounds < 1 || g_rounds > 99) {
        std::fprintf(stderr, "payload_speed: bad --ms or --rounds\n");
        return 2;
    }
    g_window_s = ms_per_cell / 1000.0 / g_rounds;

    const std::size_t chunks[] = {64, 1024, 64 * 1024, 1024 * 1024};
    std::vector<std::unique_ptr<PayloadState>> payload_states;
    std::vector<std::unique_ptr<MessageState>> message_states;
    std::vector<Row> rows;
    for (bool line : {false, true})
        for (std::size_t c : chunks) rows.push_back(payload_row(line, c, payload_states));
    for (FramingMode m : {FramingMode::Raw, FramingMode::Length})
        for (std::size_t c : chunks) rows.push_back(message_row(m, c, message_states));

    for (Row& r : rows)
        for (Measure& m : r.m) m.calibrate();
    for (int round = 0; round < g_rounds; ++round)
        for (Row& r : rows)
            for (Measure& m : r.m) m.window();

    std::printf("payload_speed (%s): one thread, GB/s = 1e9 B/s, median of %d rounds of %.0f ms per cell "
                "[best round]\n",
                PAYLOAD_SPEED_FLAGS, g_rounds, g_window_s * 1000);
    std::printf("%-21s %7s %16s %16s %16s %9s  %s\n", "stream", "chunk", "fill", "verify", "fill+verify",
                "harmonic", "fill+verify >= 5");
    std::printf("%s\n", std::string(111, '-').c_str());
    for (const Row& r : rows) {
        Cell fill = r.m[0].cell(), verify = r.m[1].cell(), both = r.m[2].cell();
        double harmonic = 1.0 / (1.0 / fill.median_gbs + 1.0 / verify.median_gbs);
        char f[32], v[32], b[32];
        std::snprintf(f, sizeof f, "%6.2f [%6.2f]", fill.median_gbs, fill.best_gbs);
        std::snprintf(v, sizeof v, "%6.2f [%6.2f]", verify.median_gbs, verify.best_gbs);
        std::snprintf(b, sizeof b, "%6.2f [%6.2f]", both.median_gbs, both.best_gbs);
        std::printf("%-21s %7s %16s %16s %16s %9.2f  %s\n", r.what.c_str(), chunk_text(r.chunk).c_str(), f, v, b,
                    harmonic, both.median_gbs >= 5.0 ? "met" : both.best_gbs >= 5.0 ? "best round only" : "NOT MET");
    }
    std::printf("(fill+verify: one stream fills the chunk, a second one with the same seed verifies it, in one loop:\n"
                " bytes / (time of fill + time of verify). harmonic: 1 / (1/fill + 1/verify) from the separate\n"
                " columns, which should agree. MessageStream: one call per message of CHUNK wire bytes.)\n");
    if (g_failed) {
        std::fprintf(stderr, "payload_speed: a verification failed: the benchmark is broken\n");
        return 1;
    }
    return g_sink == 0 ? 1 : 0;  // uses the sink; it is never 0 after a run
}
