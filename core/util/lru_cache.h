// A cache of values by key within a byte budget: putting an entry evicts the least
// recently used ones until the entries fit; an entry larger than the whole budget is
// not kept. Callers recompute what is gone (getOrCompute). Thread-safe; values are
// shared, so one evicted while a reader holds it stays alive for that reader.
//   LruCache<int, Tensor> c(cacheBudgetBytes());
//   auto t = c.getOrCompute(7, [&] { Tensor x = work(7); return std::pair(x, int64_t(x.bytes.size())); });
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace qs {

template <class Key, class Value> class LruCache {
public:
    explicit LruCache(int64_t budgetBytes) : budget_(budgetBytes) { }

    // The value, now the most recently used; null when not cached.
    std::shared_ptr<const Value> find(const Key& key)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = index_.find(key);
        if (it == index_.end()) {
            ++misses_;
            return nullptr;
        }
        ++hits_;
        order_.splice(order_.begin(), order_, it->second);
        return it->second->value;
    }
    bool contains(const Key& key) const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return index_.count(key) > 0;
    }

    // Keeps `value` (replacing one of the same key) as the most recently used entry of
    // `bytes`, then evicts from the least recently used end until within the budget.
    std::shared_ptr<const Value> put(const Key& key, Value value, int64_t bytes)
    {
        auto shared = std::make_shared<const Value>(std::move(value));
        std::lock_guard<std::mutex> lock(mutex_);
        eraseLocked(key);
        if (bytes > budget_) {
            ++evictions_;
            return shared;
        }
        order_.push_front({key, shared, bytes});
        index_[key] = order_.begin();
        bytes_ += bytes;
        evictLocked();
        return shared;
    }

    // The cached value, else compute() -> {value, bytes} put and returned.
    template <class Compute> std::shared_ptr<const Value> getOrCompute(const Key& key, Compute&& compute)
    {
        if (auto v = find(key))
            return v;
        auto [value, bytes] = compute();
        return put(key, std::move(value), bytes);
    }

    void erase(const Key& key)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        eraseLocked(key);
    }
    void clear()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        order_.clear();
        index_.clear();
        bytes_ = 0;
    }
    void setBudget(int64_t budgetBytes)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        budget_ = budgetBytes;
        evictLocked();
    }

    int64_t budget() const { std::lock_guard<std::mutex> lock(mutex_); return budget_; }
    int64_t bytes() const { std::lock_guard<std::mutex> lock(mutex_); return bytes_; }
    std::size_t size() const { std::lock_guard<std::mutex> lock(mutex_); return index_.size(); }
    // Entries dropped for the budget (or never kept for being larger than it).
    int64_t evictions() const { std::lock_guard<std::mutex> lock(mutex_); return evictions_; }
    int64_t hits() const { std::lock_guard<std::mutex> lock(mutex_); return hits_; }
    int64_t misses() const { std::lock_guard<std::mutex> lock(mutex_); return misses_; }

private:
    struct Entry {
        Key key;
        std::shared_ptr<const Value> value;
        int64_t bytes = 0;
    };
    void eraseLocked(const Key& key)
    {
        auto it = index_.find(key);
        if (it == index_.end())
            return;
        bytes_ -= it->second->bytes;
        order_.erase(it->second);
        index_.erase(it);
    }
    void evictLocked()
    {
        while (bytes_ > budget_ && !order_.empty()) {
            const Entry& last = order_.back();
            bytes_ -= last.bytes;
            index_.erase(last.key);
            order_.pop_back();
            ++evictions_;
        }
    }

    mutable std::mutex mutex_;
    std::list<Entry> order_; // most recently used first
    std::map<Key, typename std::list<Entry>::iterator> index_;
    int64_t budget_ = 0, bytes_ = 0, evictions_ = 0, hits_ = 0, misses_ = 0;
};

} // namespace qs
