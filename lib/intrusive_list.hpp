// A doubly linked list threaded through its elements: no allocation, O(1) insert and remove.
// An element derives from ListNode<Tag> once per list it can be on (the tag tells the lists
// apart) and is on at most one list of each tag at a time. The list does not own elements.
#pragma once

namespace tcpecho {

template <class Tag>
class ListNode {
public:
    ListNode() noexcept = default;
    // A copy is not on any list.
    ListNode(const ListNode&) noexcept {}
    ListNode& operator=(const ListNode&) noexcept { return *this; }
    ~ListNode() = default;

    [[nodiscard]] bool linked() const noexcept { return next_ != nullptr; }
    // Takes this element off its list; nothing if it is on none.
    void unlink() noexcept {
        if (next_ == nullptr) return;
        prev_->next_ = next_;
        next_->prev_ = prev_;
        prev_ = next_ = nullptr;
    }

private:
    template <class T, class U>
    friend class IntrusiveList;
    ListNode* prev_ = nullptr;
    ListNode* next_ = nullptr;
};

template <class T, class Tag>
class IntrusiveList {
public:
    using Node = ListNode<Tag>;

    IntrusiveList() noexcept { head_.prev_ = head_.next_ = &head_; }
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;
    // Elements still on it are left unlinked.
    ~IntrusiveList() { clear(); }

    [[nodiscard]] bool empty() const noexcept { return head_.next_ == &head_; }
    [[nodiscard]] T* front() noexcept { return empty() ? nullptr : static_cast<T*>(head_.next_); }
    [[nodiscard]] T* back() noexcept { return empty() ? nullptr : static_cast<T*>(head_.prev_); }
    // The element after `item` (which must be on this list), or nullptr at the end.
    [[nodiscard]] T* next(T& item) noexcept {
        Node* n = static_cast<Node&>(item).next_;
        return n == &head_ ? nullptr : static_cast<T*>(n);
    }

    // Appends `item`, taking it off the list it was on first.
    void push_back(T& item) noexcept {
        Node& n = item;
        n.unlink();
        n.prev_ = head_.prev_;
        n.next_ = &head_;
        head_.prev_->next_ = &n;
        head_.prev_ = &n;
    }
    [[nodiscard]] T* pop_front() noexcept {
        T* item = front();
        if (item != nullptr) static_cast<Node&>(*item).unlink();
        return item;
    }
    // Moves every element to the back of `to`, in order, in O(1); this list is empty afterwards.
    void move_all_to(IntrusiveList& to) noexcept {
        if (empty()) return;
        Node* first = head_.next_;
        Node* last = head_.prev_;
        first->prev_ = to.head_.prev_;
        to.head_.prev_->next_ = first;
        last->next_ = &to.head_;
        to.head_.prev_ = last;
        head_.prev_ = head_.next_ = &head_;
    }
    void clear() noexcept {
        while (pop_front() != nullptr) {
        }
    }

private:
    Node head_;  // sentinel: the list is circular through it
};

}  // namespace tcpecho
