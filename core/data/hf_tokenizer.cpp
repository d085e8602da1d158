// Hugging Face tokenizer.json, byte-level BPE as GPT-2 uses it (Radford et al. 2019,
// "Language Models are Unsupervised Multitask Learners"; BPE: Sennrich et al. 2016):
// added tokens split off first, then each piece pre-tokenized by the GPT-2 regex, its
// bytes mapped to printable characters and merged by merge rank. Checked against
// Hugging Face's tokenizers by tests/data/test_tokenizers.cpp.
#include "data/tokenizer.h"

#include "util/error.h"
#include "util/file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <queue>
#include <unordered_map>

namespace qs {
namespace {

enum class CharClass : uint8_t { Other = 0, Letter = 1, Number = 2, Space = 3 };

struct ClassRange {
    uint32_t first, last;
    uint8_t cls;
};
constexpr ClassRange kClassRanges[] = {
#include "data/unicode_classes.inc"
};

// Unicode White_Space: Oniguruma's \s and Rust's char::is_whitespace.
bool isWhiteSpace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
        (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

CharClass classOf(uint32_t cp)
{
    if (isWhiteSpace(cp))
        return CharClass::Space;
    const auto* end = std::end(kClassRanges);
    const auto* it = std::upper_bound(
        std::begin(kClassRanges), end, cp, [](uint32_t c, const ClassRange& r) { return c < r.first; });
    if (it == std::begin(kClassRanges) || cp > (it - 1)->last)
        return CharClass::Other;
    return CharClass((it - 1)->cls);
}

// The code point at s[i] and its length; a byte that starts no valid sequence is one
// code point of its own (the callers check UTF-8 first; this only keeps reads in bounds).
uint32_t decodeAt(std::string_view s, std::size_t i, std::size_t& len)
{
    const auto c = static_cast<unsigned char>(s[i]);
    len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len == 1 || i + len > s.size()) {
        len = 1;
        return c;
    }
    uint32_t cp = c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    return cp;
}

void appendUtf8(std::string& out, uint32_t cp)
{
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

// GPT-2's byte -> character map: printable Latin-1 bytes stand for themselves, the
// others for U+0100 and up in byte order.
std::array<std::string, 256> byteSymbols()
{
    std::array<std::string, 256> out;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        appendUtf8(out[b], printable ? b : next++);
    }
    return out;
}

// Calls emit(piece) for each match of GPT-2's pre-tokenizer regex over `s`:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
template<class Emit> void gpt2Split(std::string_view s, Emit&& emit)
{
    struct Char {
        CharClass cls;
        std::size_t len;
    };
    auto charAt = [&](std::size_t i) {
        std::size_t len = 0;
        const uint32_t cp = decodeAt(s, i, len);
        return Char {classOf(cp), len};
    };
    // The contractions are ASCII, so bytes can be compared (no multi-byte sequence holds one).
    auto is = [&](std::size_t k, char c) { return k < s.size() && s[k] == c; };
    for (std::size_t i = 0; i < s.size();) {
        std::size_t end = i;
        if (s[i] == '\'' && (is(i + 1, 's') || is(i + 1, 't') || is(i + 1, 'm') || is(i + 1, 'd'))) {
            end = i + 2;
        } else if (s[i] == '\'' &&
            ((is(i + 1, 'r') && is(i + 2, 'e')) || (is(i + 1, 'v') && is(i + 2, 'e')) ||
                (is(i + 1, 'l') && is(i + 2, 'l')))) {
            end = i + 3;
        } else {
            const Char c = charAt(i);
            std::size_t start = i;
            CharClass run = c.cls;
            if (s[i] == ' ' && i + 1 < s.size() && charAt(i + 1).cls != CharClass::Space) {
                start = i + 1; // " ?": the space goes with the run after it
                run = charAt(start).cls;
            }
            if (run != CharClass::Space) { // a run of letters, of numbers or of the rest
                end = start;
                for (Char k; end < s.size() && (k = charAt(end)).cls == run;)
                    end += k.len;
            } else {
                std::size_t last = i; // where the run's last white space starts
                for (Char k; end < s.size() && (k = charAt(end)).cls == CharClass::Space; end += k.len)
                    last = end;
                if (end < s.size()) // \s+(?!\S): the last space goes with what follows; \s+: one space
                    end = last > i ? last : i + c.len;
            }
        }
        emit(s.substr(i, end - i));
        i = end;
    }
}

struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool lstrip = false, rstrip = false;
};

// A piece of the input: text still to encode (id < 0) or an added token.
struct Piece {
    std::string_view text;
    int32_t id = -1;
};

// The length of the White_Space run that ends at `end` (going left) or starts at `begin`.
std::size_t spacesBefore(std::string_view s, std::size_t end, std::size_t floor)
{
    std::size_t i = end;
    while (i > floor) {
        std::size_t k = i - 1;
        while (k > floor && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80)
            --k;
        std::size_t len = 0;
        if (!isWhiteSpace(decodeAt(s, k, len)) || k + len != i)
            break;
        i = k;
    }
    return end - i;
}

std::size_t spacesAfter(std::string_view s, std::size_t begin)
{
    std::size_t i = begin, len = 0;
    while (i < s.size() && isWhiteSpace(decodeAt(s, i, len)))
        i += len;
    return i - begin;
}

// Splits the text pieces at every occurrence of the tokens, leftmost first and the
// longest of those starting there (Hugging Face's AddedVocabulary::find_matches).
std::vector<Piece> splitOnAdded(const std::vector<Piece>& in, const std::vector<AddedToken>& tokens)
{
    if (tokens.empty())
        return in;
    std::vector<Piece> out;
    std::vector<std::size_t> next(tokens.size());
    for (const Piece& p : in) {
        if (p.id >= 0) {
            out.push_back(p);
            continue;
        }
        const std::string_view s = p.text;
        for (std::size_t t = 0; t < tokens.size(); ++t)
            next[t] = s.find(tokens[t].content);
        std::size_t pos = 0;
        while (true) {
            std::size_t best = tokens.size();
            for (std::size_t t = 0; t < tokens.size(); ++t) {
                if (next[t] != std::string_view::npos && next[t] < pos)
                    next[t] = s.find(tokens[t].content, pos);
                if (next[t] == std::string_view::npos)
                    continue;
                if (best == tokens.size() || next[t] < next[best] ||
                    (next[t] == next[best] && tokens[t].content.size() > tokens[best].content.size()))
                    best = t;
            }
            if (best == tokens.size())
                break;
            const AddedToken& tok = tokens[best];
            std::size_t start = next[best], stop = start + tok.content.size();
            if (tok.lstrip)
                start -= spacesBefore(s, start, pos);
            if (tok.rstrip)
                stop += spacesAfter(s, stop);
            if (start > pos)
                out.push_back({s.substr(pos, start - pos), -1});
            out.push_back({s.substr(start, stop - start), tok.id});
            pos = stop;
        }
        if (pos < s.size())
            out.push_back({s.substr(pos), -1});
    }
    return out;
}

class HfBpeTokenizer : public Tokenizer {
public:
    // `text`: the tokenizer.json; `path`: what errors name.
    HfBpeTokenizer(std::string_view text, const std::string& path);
    std::vector<int32_t> encode(std::string_view text) const override;
    int64_t vocabSize() const override { return vocabSize_; }

private:
    void word(std::string_view bytes, std::vector<int32_t>& out) const;
    [[noreturn]] void bad(const std::string& field, const std::string& what) const
    {
        fail(path_, ": field ", field, " ", what);
    }

    std::string path_;
    std::unordered_map<std::string, int32_t> vocab_;
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_; // (left, right) -> (rank, merged id)
    std::array<int32_t, 256> byteId_ {};
    std::array<std::string, 256> byteSymbol_;
    int32_t unk_ = -1;
    bool fuseUnk_ = false, ignoreMerges_ = false, addPrefixSpace_ = false;
    std::vector<AddedToken> rawAdded_, normalizedAdded_; // matched before / after the (absent) normalizer
    int64_t vocabSize_ = 0;
};

uint64_t pairKey(int32_t a, int32_t b)
{
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

HfBpeTokenizer::HfBpeTokenizer(std::string_view text, const std::string& path) : path_(path)
{
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(path, ": not a tokenizer.json (", e.what(), ")");
    }
    if (!j.is_object())
        fail(path, ": not a tokenizer.json (expected a JSON object)");
    auto isNullOr = [](const nlohmann::json& o, const char* key, auto ok) {
        return !o.contains(key) || o.at(key).is_null() || ok(o.at(key));
    };
    auto flag = [&](const nlohmann::json& o, const char* key, const std::string& where, bool fallback) {
        if (!o.contains(key) || o.at(key).is_null())
            return fallback;
        if (!o.at(key).is_boolean())
            bad(where + "." + key, "is not true or false");
        return o.at(key).get<bool>();
    };
    auto typeOf = [&](const nlohmann::json& o, const std::string& where) {
        if (!o.is_object() || !o.contains("type") || !o.at("type").is_string())
            bad(where + ".type", "is missing");
        return o.at("type").get<std::string>();
    };

    if (j.contains("normalizer") && !j.at("normalizer").is_null())
        bad("normalizer",
            str("is ", quoted(typeOf(j.at("normalizer"), "normalizer")),
                "; only byte-level BPE without a normalizer (null) is supported"));
    if (!j.contains("pre_tokenizer") || j.at("pre_tokenizer").is_null())
        bad("pre_tokenizer", "is missing; only ByteLevel (GPT-2's byte-level BPE) is supported");
    const nlohmann::json& pre = j.at("pre_tokenizer");
    if (const std::string t = typeOf(pre, "pre_tokenizer"); t != "ByteLevel")
        bad("pre_tokenizer.type", str("is ", quoted(t), "; only ByteLevel (the GPT-2 regex) is supported"));
    if (!flag(pre, "use_regex", "pre_tokenizer", true))
        bad("pre_tokenizer.use_regex", "is false; only the GPT-2 regex split is supported");
    addPrefixSpace_ = flag(pre, "add_prefix_space", "pre_tokenizer", true);

    if (!j.contains("model"))
        bad("model", "is missing");
    const nlohmann::json& m = j.at("model");
    if (const std::string t = typeOf(m, "model"); t != "BPE")
        bad("model.type", str("is ", quoted(t), "; only BPE is supported"));
    auto emptyString = [](const nlohmann::json& v) { return v.is_string() && v.get<std::string>().empty(); };
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (!isNullOr(m, key, emptyString))
            bad(str("model.", key), "is set; byte-level BPE has none (null or \"\")");
    if (!isNullOr(m, "dropout", [](const nlohmann::json& v) { return v.is_number() && v.get<double>() == 0; }))
        bad("model.dropout", "is set; only deterministic BPE (dropout null) is supported");
    if (flag(m, "byte_fallback", "model", false))
        bad("model.byte_fallback", "is true; byte-level BPE needs no byte fallback and it is not supported");
    fuseUnk_ = flag(m, "fuse_unk", "model", false);
    ignoreMerges_ = flag(m, "ignore_merges", "model", false);

    if (!m.contains("vocab") || !m.at("vocab").is_object())
        bad("model.vocab", "is missing or not an object of token -> id");
    for (const auto& [token, id] : m.at("vocab").items()) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
            bad("model.vocab", str("gives token ", quoted(token), " the id ", id.dump(), "; expected 0..", INT32_MAX));
        vocab_[token] = id.get<int32_t>();
        vocabSize_ = std::max<int64_t>(vocabSize_, id.get<int64_t>() + 1);
    }
    if (m.contains("unk_token") && !m.at("unk_token").is_null()) {
        const auto& u = m.at("unk_token");
        if (!u.is_string() || !vocab_.count(u.get<std::string>()))
            bad("model.unk_token", str(u.dump(), " is not a token of model.vocab"));
        unk_ = vocab_.at(u.get<std::string>());
    }

    if (!m.contains("merges") || !m.at("merges").is_array())
        bad("model.merges", "is missing or not an array");
    const nlohmann::json& merges = m.at("merges");
    for (std::size_t r = 0; r < merges.size(); ++r) {
        const nlohmann::json& e = merges[r];
        const std::string where = str("model.merges[", r, "]");
        std::string left, right;
        if (e.is_string()) { // "left right"
            const std::string s = e.get<std::string>();
            const std::size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                bad(where, str("is ", quoted(s), "; expected two tokens separated by one space"));
            left = s.substr(0, sp);
            right = s.substr(sp + 1);
        } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) { // ["left", "right"]
            left = e[0].get<std::string>();
            right = e[1].get<std::string>();
        } else {
            bad(where, "is neither \"left right\" nor [\"left\", \"right\"]");
        }
        auto id = [&](const std::string& token) {
            auto it = vocab_.find(token);
            if (it == vocab_.end())
                bad(where, str("names ", quoted(token), ", which is not in model.vocab"));
            return it->second;
        };
        const int32_t a = id(left), b = id(right), merged = id(left + right);
        merges_.try_emplace(pairKey(a, b), int32_t(r), merged);
    }

    byteSymbol_ = byteSymbols();
    for (int b = 0; b < 256; ++b) {
        auto it = vocab_.find(byteSymbol_[std::size_t(b)]);
        byteId_[std::size_t(b)] = it == vocab_.end() ? -1 : it->second;
    }

    if (j.contains("added_tokens") && !j.at("added_tokens").is_null()) {
        const nlohmann::json& added = j.at("added_tokens");
        if (!added.is_array())
            bad("added_tokens", "is not an array");
        for (std::size_t i = 0; i < added.size(); ++i) {
            const std::string where = str("added_tokens[", i, "]");
            const nlohmann::json& a = added[i];
            if (!a.is_object() || !a.contains("id") || !a.at("id").is_number_integer() || !a.contains("content") ||
                !a.at("content").is_string())
                bad(where, "lacks an integer id or a string content");
            AddedToken t;
            t.content = a.at("content").get<std::string>();
            const int64_t id = a.at("id").get<int64_t>();
            if (t.content.empty() || id < 0 || id > INT32_MAX)
                bad(where,
                    str("has content ", quoted(t.content), " and id ", id, "; expected text and 0..", INT32_MAX));
            t.id = int32_t(id);
            if (flag(a, "single_word", where, false))
                bad(where + ".single_word", "is true; single-word added tokens are not supported");
            t.lstrip = flag(a, "lstrip", where, false);
            t.rstrip = flag(a, "rstrip", where, false);
            (flag(a, "normalized", where, !flag(a, "special", where, false)) ? normalizedAdded_ : rawAdded_)
                .push_back(std::move(t));
            vocabSize_ = std::max<int64_t>(vocabSize_, id + 1);
        }
    }
}

void HfBpeTokenizer::word(std::string_view bytes, std::vector<int32_t>& out) const
{
    if (ignoreMerges_) { // a word the vocabulary holds whole is one token
        std::string mapped;
        for (char c : bytes)
            mapped += byteSymbol_[static_cast<unsigned char>(c)];
        if (auto it = vocab_.find(mapped); it != vocab_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    // Symbols as a linked list; a heap of candidate merges by (rank, position), each
    // checked when it comes up, since an earlier merge may have consumed its symbols.
    struct Symbol {
        int32_t id;
        int32_t prev, next;
        bool alive;
    };
    std::vector<Symbol> sym;
    for (char c : bytes) {
        const int32_t id = byteId_[static_cast<unsigned char>(c)];
        if (id >= 0) {
            sym.push_back({id, int32_t(sym.size()) - 1, int32_t(sym.size()) + 1, true});
        } else if (unk_ >= 0 && !(fuseUnk_ && !sym.empty() && sym.back().id == unk_)) {
            sym.push_back({unk_, int32_t(sym.size()) - 1, int32_t(sym.size()) + 1, true});
        } // else dropped, as Hugging Face's BPE drops a symbol it has no id for and no unk_token
    }
    if (sym.empty())
        return;
    sym.back().next = -1;
    struct Candidate {
        int32_t rank, pos, merged;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto consider = [&](int32_t pos) {
        const int32_t next = sym[std::size_t(pos)].next;
        if (next < 0)
            return;
        auto it = merges_.find(pairKey(sym[std::size_t(pos)].id, sym[std::size_t(next)].id));
        if (it != merges_.end())
            heap.push({it->second.first, pos, it->second.second});
    };
    for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i)
        consider(i);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        Symbol& left = sym[std::size_t(c.pos)];
        if (!left.alive || left.next < 0)
            continue;
        auto it = merges_.find(pairKey(left.id, sym[std::size_t(left.next)].id));
        if (it == merges_.end() || it->second.first != c.rank)
            continue; // stale: a symbol of this pair has changed
        Symbol& right = sym[std::size_t(left.next)];
        right.alive = false;
        left.id = c.merged;
        left.next = right.next;
        if (right.next >= 0)
            sym[std::size_t(right.next)].prev = c.pos;
        if (left.prev >= 0)
            consider(left.prev);
        consider(c.pos);
    }
    for (const Symbol& s : sym)
        if (s.alive)
            out.push_back(s.id);
}

std::vector<int32_t> HfBpeTokenizer::encode(std::string_view text) const
{
    std::vector<Piece> pieces = splitOnAdded(splitOnAdded({{text, -1}}, rawAdded_), normalizedAdded_);
    std::vector<int32_t> out;
    std::unordered_map<std::string, std::pair<std::size_t, std::size_t>> cache; // word -> its ids in `out`
    std::string prefixed;
    for (const Piece& p : pieces) {
        if (p.id >= 0) {
            out.push_back(p.id);
            continue;
        }
        std::string_view s = p.text;
        if (addPrefixSpace_ && !s.starts_with(' ')) {
            prefixed = " ";
            prefixed += s;
            s = prefixed;
        }
        gpt2Split(s, [&](std::string_view w) {
            std::string key(w);
            if (auto it = cache.find(key); it != cache.end()) {
                const auto [at, n] = it->second;
                for (std::size_t k = 0; k < n; ++k) {
                    const int32_t id = out[at + k];
                    out.push_back(id);
                }
                return;
            }
            const std::size_t at = out.size();
            word(w, out);
            if (cache.size() < (std::size_t(1) << 20))
                cache.emplace(std::move(key), std::pair(at, out.size() - at));
        });
    }
    return out;
}

} // namespace

std::unique_ptr<Tokenizer> loadHfTokenizer(const std::string& path)
{
    if (!std::filesystem::is_regular_file(path))
        fail(path, ": no such tokenizer.json file");
    return parseHfTokenizer(readRegularFile(path, kMaxModelFileBytes), path);
}

std::unique_ptr<Tokenizer> parseHfTokenizer(std::string_view json, const std::string& label)
{
    return std::make_unique<HfBpeTokenizer>(json, label);
}

} // namespace qs
