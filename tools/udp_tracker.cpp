#include "tools/udp_tracker.hpp"

#include <algorithm>

namespace tcpecho::probe::udp {

void SeqTracker::on_sent(std::uint64_t send_ns, std::uint32_t size) {
    entries_.push_back(Entry{send_ns, size, State::InFlight});
    ++next_;
    ++in_flight_;
    in_flight_bytes_ += size;
}

SeqTracker::Lookup SeqTracker::lookup(std::uint64_t seq) const noexcept {
    Lookup l;
    if (seq >= next_) return l;
    if (seq >= base_) {
        const Entry& e = at(seq);
        l.kind = Lookup::Kind::Known;
        l.state = e.state;
        l.send_ns = e.send_ns;
        l.size = e.size;
        return l;
    }
    l.kind = Lookup::Kind::Forgotten;
    const bool lost = seq < forgotten_floor_ || std::binary_search(forgotten_lost_.begin(), forgotten_lost_.end(), seq);
    l.state = lost ? State::Lost : State::Received;
    return l;
}

void SeqTracker::resolve(std::uint64_t seq, State state) {
    Entry& e = at(seq);
    e.state = state;
    --in_flight_;
    in_flight_bytes_ -= e.size;
}

bool SeqTracker::on_received(std::uint64_t seq) {
    resolve(seq, State::Received);
    const bool reordered = highest_received_ && seq < *highest_received_;
    if (!highest_received_ || seq > *highest_received_) highest_received_ = seq;
    advance_oldest();
    trim();
    return reordered;
}

void SeqTracker::on_corrupted(std::uint64_t seq) {
    resolve(seq, State::Corrupted);
    advance_oldest();
    trim();
}

void SeqTracker::advance_oldest() noexcept {
    while (oldest_ < next_ && at(oldest_).state != State::InFlight) ++oldest_;
}

std::uint64_t SeqTracker::expire(std::uint64_t cutoff_ns) {
    std::uint64_t lost = 0;
    // Send times grow with the sequence number, so the expired ones are a prefix of what is
    // in flight: stop at the first that is not.
    while (oldest_ < next_) {
        Entry& e = at(oldest_);
        if (e.state == State::InFlight) {
            if (e.send_ns > cutoff_ns) break;
            resolve(oldest_, State::Lost);
            ++lost;
        }
        ++oldest_;
    }
    if (lost > 0) trim();
    return lost;
}

std::uint64_t SeqTracker::abandon() {
    std::uint64_t lost = 0;
    for (std::uint64_t seq = oldest_; seq < next_; ++seq) {
        if (at(seq).state != State::InFlight) continue;
        resolve(seq, State::Lost);
        ++lost;
    }
    oldest_ = next_;
    trim();
    return lost;
}

std::optional<std::uint64_t> SeqTracker::oldest_in_flight() const noexcept {
    if (in_flight_ == 0) return std::nullopt;
    return oldest_;
}

std::uint64_t SeqTracker::send_ns_of(std::uint64_t seq) const noexcept { return at(seq).send_ns; }

void SeqTracker::trim() {
    // Everything below oldest_ is resolved; keep kHistory of those.
    while (oldest_ - base_ > kHistory) {
        if (entries_.front().state == State::Lost) {
            if (forgotten_lost_.size() == kMaxForgottenLost) {
                forgotten_floor_ = forgotten_lost_.front() + 1;
                forgotten_lost_.pop_front();
            }
            forgotten_lost_.push_back(base_);
        }
        entries_.pop_front();
        ++base_;
    }
}

}  // namespace tcpecho::probe::udp
