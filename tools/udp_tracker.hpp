// One UDP flow's sequence numbers: which datagrams are in flight, and what became of the
// others, so an echo can be classified as received, duplicated or late. Pure: no sockets, no
// clock (times are passed in), so the accounting is tested on its own.
//
// Memory: an entry (16 bytes) per sequence number from the oldest one still in flight to the
// newest, plus kHistory resolved ones before that. The oldest in flight is at most --timeout
// old, so this is bounded by about rate x timeout entries, never by the run's length. What
// falls off the front is remembered only if it was lost (a sorted list, for "late").
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace tcpecho::probe::udp {

class SeqTracker {
public:
    enum class State : std::uint8_t {
        InFlight,
        Received,   // its verified echo came back in time
        Corrupted,  // an echo naming it came back damaged
        Lost,       // no echo within --timeout (or the run was abandoned)
    };

    // Resolved entries kept before the oldest one in flight: for them a duplicate's or late
    // echo's send time can still be checked. Older ones are judged by payload alone.
    static constexpr std::size_t kHistory = 64;
    // Lost sequence numbers remembered after their entry is dropped. Beyond that (a flow that
    // lost over a million datagrams) an old echo that is not a known loss counts as late.
    static constexpr std::size_t kMaxForgottenLost = 1U << 20;

    struct Lookup {
        enum class Kind : std::uint8_t {
            NeverSent,  // seq >= next_seq(): not a datagram of ours
            Known,      // entry still kept: state, send time and size are exact
            Forgotten,  // entry dropped: only whether it was lost (state Lost) or not (Received)
        };
        Kind kind = Kind::NeverSent;
        State state = State::InFlight;
        std::uint64_t send_ns = 0;  // Known only
        std::uint32_t size = 0;     // Known only
    };

    // Records the next datagram (sequence number next_seq()).
    void on_sent(std::uint64_t send_ns, std::uint32_t size);
    [[nodiscard]] std::uint64_t next_seq() const noexcept { return next_; }
    [[nodiscard]] Lookup lookup(std::uint64_t seq) const noexcept;

    // Resolves an in-flight datagram as received. Returns true when it is reordered: a higher
    // sequence number of this flow was received before it.
    bool on_received(std::uint64_t seq);
    // Resolves an in-flight datagram whose echo came back damaged.
    void on_corrupted(std::uint64_t seq);
    // Marks lost what is in flight and was sent at or before `cutoff_ns`; returns how many.
    std::uint64_t expire(std::uint64_t cutoff_ns);
    // Marks everything in flight lost (the run is abandoned); returns how many.
    std::uint64_t abandon();

    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
    [[nodiscard]] std::uint64_t in_flight_bytes() const noexcept { return in_flight_bytes_; }
    // The oldest datagram in flight: its sequence number and send time.
    [[nodiscard]] std::optional<std::uint64_t> oldest_in_flight() const noexcept;
    [[nodiscard]] std::uint64_t send_ns_of(std::uint64_t seq) const noexcept;
    [[nodiscard]] std::size_t kept() const noexcept { return entries_.size(); }  // for tests

private:
    struct Entry {
        std::uint64_t send_ns;
        std::uint32_t size;
        State state;
    };
    Entry& at(std::uint64_t seq) noexcept { return entries_[static_cast<std::size_t>(seq - base_)]; }
    [[nodiscard]] const Entry& at(std::uint64_t seq) const noexcept {
        return entries_[static_cast<std::size_t>(seq - base_)];
    }
    void resolve(std::uint64_t seq, State state);
    void advance_oldest() noexcept;
    void trim();

    std::deque<Entry> entries_;  // sequence numbers base_ .. next_ - 1
    std::uint64_t base_ = 0;
    std::uint64_t next_ = 0;
    std::uint64_t oldest_ = 0;  // no entry below this is in flight
    std::size_t in_flight_ = 0;
    std::uint64_t in_flight_bytes_ = 0;
    std::optional<std::uint64_t> highest_received_;
    std::deque<std::uint64_t> forgotten_lost_;  // ascending
    std::uint64_t forgotten_floor_ = 0;         // below this, forgotten losses were not all kept
};

}  // namespace tcpecho::probe::udp
