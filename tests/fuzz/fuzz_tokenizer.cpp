// libFuzzer: the tokenizer.json reader on arbitrary bytes (a file that loads then
// encodes a fixed text), and byte-level BPE encoding of arbitrary bytes, valid UTF-8 or
// not, with the test tokenizer that has added tokens and a prefix space; every id must
// lie inside the vocabulary.
#include "data/tokenizer.h"
#include "util/error.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace {

void checkIds(const qs::Tokenizer& t, std::string_view text)
{
    for (int32_t id : t.encode(text))
        if (id < 0 || id >= t.vocabSize())
            __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::unique_ptr<qs::Tokenizer> bpe =
        qs::loadHfTokenizer(QS_SOURCE_DIR "/tests/data/tokenizers/bpe_prefix.json");
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    checkIds(*bpe, bytes);
    try {
        const auto t = qs::parseHfTokenizer(bytes, "fuzz.json");
        checkIds(*t, "Hello, world's 123 \xF0\x9F\x98\x80  <|endoftext|>\n\t x");
    } catch (const qs::Error&) {
    }
    return 0;
}
