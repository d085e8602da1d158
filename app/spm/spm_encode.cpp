// quantstudio-spm MODEL TEXT: encodes TEXT (UTF-8) with the SentencePiece model MODEL,
// each line on its own as spm_encode does, and writes to standard output the model's
// piece count then every id, as little-endian int32; on failure one line of error text
// and exit 1. A process of its own because Debian's libsentencepiece carries its own
// protobuf 3.14 runtime, which aborts beside the protobuf that core/ links for ONNX;
// core/data/tokenizer.cpp runs it. Links nothing of core/.
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// In the sanitizer tree: libsentencepiece's own allocations are not ours to report.
extern "C" const char* __asan_default_options()
{
    return "detect_leaks=0";
}

namespace {

int failWith(const std::string& message)
{
    std::fwrite(message.data(), 1, message.size(), stdout);
    return 1;
}

bool readFile(const char* path, std::string& out)
{
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    out = s.str();
    return bool(f) || f.eof();
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
        return failWith("usage: quantstudio-spm MODEL TEXT");
    std::string model, text;
    if (!readFile(argv[1], model))
        return failWith(std::string(argv[1]) + ": cannot read the SentencePiece model");
    if (!readFile(argv[2], text))
        return failWith(std::string(argv[2]) + ": cannot read the text");
    sentencepiece::SentencePieceProcessor sp;
    if (const auto status = sp.LoadFromSerializedProto(model); !status.ok())
        return failWith(std::string(argv[1]) + ": not a SentencePiece model (" + status.ToString() + ")");
    std::vector<int32_t> out = {int32_t(sp.GetPieceSize())};
    std::vector<int> ids;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = std::min(text.find('\n', at), text.size());
        if (const auto status = sp.Encode(std::string_view(text).substr(at, end - at), &ids); !status.ok())
            return failWith(std::string(argv[1]) + ": SentencePiece cannot encode the line at byte " +
                std::to_string(at) + " (" + status.ToString() + ")");
        out.insert(out.end(), ids.begin(), ids.end());
        at = end + 1;
    }
    if (std::fwrite(out.data(), sizeof(int32_t), out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
        return failWith("quantstudio-spm: cannot write the ids");
    return 0;
}
