// Tokenizers that turn text into the token ids of a language model (text:FILE with
// --tokenizer): SentencePiece models through Debian's libsentencepiece, and Hugging Face
// tokenizer.json byte-level BPE (GPT-2 style) by our own implementation (hf_tokenizer.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qs {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    // The ids of `text` (valid UTF-8), without the special tokens a post-processor would
    // add (no BOS/EOS): a document's ids as a language model is scored on them.
    virtual std::vector<int32_t> encode(std::string_view text) const = 0;
    // One more than the largest id the tokenizer can produce.
    virtual int64_t vocabSize() const = 0;
};

// "spm:FILE" (a SentencePiece .model; each line encoded on its own, as spm_encode does,
// the newlines dropped) or "hf:FILE" (a Hugging Face tokenizer.json: byte-level BPE);
// a bare FILE by its extension (.model, .json). Errors name the file and the field.
std::unique_ptr<Tokenizer> loadTokenizer(const std::string& spec);
// The file a tokenizer spec names ("spm:a.model" -> "a.model").
std::string tokenizerPath(const std::string& spec);
// The spec with its kind spelled out and its file absolute ("a.model" -> "spm:/data/a.model"),
// as runs record it so that a replay from another folder finds the file.
std::string canonicalTokenizerSpec(const std::string& spec);

// A Hugging Face tokenizer.json with model BPE, pre-tokenizer ByteLevel (the GPT-2
// regex), no normalizer, and its added tokens; anything else fails naming the field.
std::unique_ptr<Tokenizer> loadHfTokenizer(const std::string& path);
// The same from the file's text; errors name `label`.
std::unique_ptr<Tokenizer> parseHfTokenizer(std::string_view json, const std::string& label);

// Fails naming `label` and the byte offset of the first invalid UTF-8 sequence.
void checkUtf8(std::string_view text, const std::string& label);

} // namespace qs
