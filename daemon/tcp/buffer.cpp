#include "daemon/tcp/buffer.hpp"

#include "daemon/tcp/memory_budget.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace tcpecho {

Buffer::Buffer(std::size_t capacity)
    // new std::byte[n] without () leaves the bytes uninitialised: recv() writes them.
    : storage_(new std::byte[capacity]), capacity_(capacity) {}

bool Buffer::reserve(std::size_t min_writable, std::size_t max_capacity) {
    if (writable() >= min_writable) return true;
    if (head_ > 0) {
        std::memmove(storage_.get(), storage_.get() + head_, size());
        tail_ -= head_;
        head_ = 0;
        if (writable() >= min_writable) return true;
    }
    std::size_t needed = tail_ + min_writable;
    if (needed > max_capacity) return false;
    std::size_t grown = std::min(std::max(capacity_ * 2, needed), max_capacity);
    std::unique_ptr<std::byte[]> bigger(new (std::nothrow) std::byte[grown]);
    if (!bigger) return false;
    std::memcpy(bigger.get(), storage_.get(), tail_);
    storage_ = std::move(bigger);
    capacity_ = grown;
    return true;
}

BufferPool::BufferPool(std::size_t buffer_size, std::size_t max_free)
    : buffer_size_(buffer_size), max_free_(max_free) {
    free_.reserve(max_free_);
}

namespace {

// Budget granularity: the kernel makes memory resident a page at a time.
constexpr std::size_t kPage = MemoryBudget::kPage;

std::size_t round_up_to_page(std::size_t n) noexcept { return (n + kPage - 1) / kPage * kPage; }

}  // namespace

BufferPool::~BufferPool() { trim(); }

void BufferPool::trim() noexcept {
    for (Buffer* b : free_) destroy(b);
    free_.clear();
}

void BufferPool::destroy(Buffer* b) noexcept {
    if (budget_ != nullptr) budget_->give_back(b->charged());
    delete b;
}

BufferPool::ReadGrant BufferPool::begin_read(Buffer& b) noexcept {
    const std::size_t writable = b.writable();
    ReadGrant grant{writable, b.charged()};
    if (budget_ == nullptr) return grant;
    const std::size_t end = b.end_offset();
    // charged() is a page boundary or the capacity, and so is this: whole pages are taken.
    const std::size_t needed = std::min(round_up_to_page(end + writable), b.capacity());
    if (needed > b.charged()) b.set_charged(b.charged() + budget_->take_up_to(needed - b.charged()));
    grant.bytes = std::min(writable, b.charged() > end ? b.charged() - end : 0);
    return grant;
}

void BufferPool::finish_read(Buffer& b, const ReadGrant& grant) noexcept {
    if (budget_ == nullptr) return;
    // Pages charged before the read stay charged (written some time, resident); of the pages
    // taken for it, those up to the end of the data are now written.
    const std::size_t keep = std::max(grant.charged_before, std::min(round_up_to_page(b.end_offset()), b.capacity()));
    if (b.charged() > keep) {
        budget_->give_back(b.charged() - keep);
        b.set_charged(keep);
    }
}

bool BufferPool::reserve(Buffer& b, std::size_t min_writable, std::size_t max_capacity) {
    const std::size_t old_capacity = b.capacity();
    if (!b.reserve(min_writable, max_capacity)) return false;
    if (budget_ == nullptr || b.capacity() == old_capacity) return true;  // compacted in place at most
    // New, bigger storage: the old one is freed, and of the new one only the copied bytes at its
    // front are written so far.
    const std::size_t old_charged = b.charged();
    const std::size_t now_charged = std::min(round_up_to_page(b.end_offset()), b.capacity());
    b.set_charged(now_charged);
    if (now_charged > old_charged) budget_->take(now_charged - old_charged);
    else budget_->give_back(old_charged - now_charged);
    return true;
}

Buffer* BufferPool::acquire() noexcept {
    if (free_.empty()) {
        Buffer* fresh = nullptr;
        try {
            fresh = new Buffer(buffer_size_);
        } catch (const std::bad_alloc&) {
            return nullptr;
        }
        ++lent_;
        return fresh;
    }
    ++lent_;
    Buffer* b = free_.back();
    free_.pop_back();
    return b;
}

void BufferPool::release(Buffer* buffer) noexcept {
    if (buffer == nullptr) return;
    --lent_;
    if (buffer->capacity() != buffer_size_ || free_.size() >= max_free_ ||
        (budget_ != nullptr && budget_->tight())) {
        destroy(buffer);
        return;
    }
    buffer->clear();
    free_.push_back(buffer);
}

}  // namespace tcpecho
