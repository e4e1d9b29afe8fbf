#include "buffer.hpp"

#include "memory_budget.hpp"

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
constexpr std::size_t kPage = 4096;

std::size_t round_up_to_page(std::size_t n) noexcept { return (n + kPage - 1) / kPage * kPage; }

}  // namespace

BufferPool::~BufferPool() {
    for (Buffer* b : free_) destroy(b);
}

void BufferPool::destroy(Buffer* b) noexcept {
    if (budget_ != nullptr) budget_->give_back(b->charged());
    delete b;
}

std::size_t BufferPool::writable_in_budget(const Buffer& b) const noexcept {
    const std::size_t writable = b.writable();
    if (budget_ == nullptr || b.charged() >= b.end_offset() + writable || !budget_->exhausted()) return writable;
    // At the budget: only storage that is charged already may be written.
    return b.charged() > b.end_offset() ? b.charged() - b.end_offset() : 0;
}

void BufferPool::charge_written(Buffer& b) noexcept {
    if (budget_ == nullptr || b.end_offset() <= b.charged()) return;
    const std::size_t now_charged = std::min(round_up_to_page(b.end_offset()), b.capacity());
    budget_->take(now_charged - b.charged());
    b.set_charged(now_charged);
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
