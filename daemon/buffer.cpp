#include "buffer.hpp"

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

BufferPool::~BufferPool() {
    for (Buffer* b : free_) delete b;
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
    if (buffer->capacity() != buffer_size_ || free_.size() >= max_free_) {
        delete buffer;
        return;
    }
    buffer->clear();
    free_.push_back(buffer);
}

}  // namespace tcpecho
