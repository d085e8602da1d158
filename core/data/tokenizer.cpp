// Tokenizer specs, UTF-8 validation and SentencePiece models, encoded by Debian's
// libsentencepiece in the program quantstudio-spm (app/spm: that library's bundled
// protobuf runtime aborts in a process that also holds ours).
#include "data/tokenizer.h"

#include "util/error.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace qs {
namespace {

namespace fs = std::filesystem;

std::string spmEncoderPath()
{
    if (const char* env = std::getenv("QS_SPM_ENCODER"); env && *env)
        return env;
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec && fs::exists(self.parent_path() / "quantstudio-spm"))
        return (self.parent_path() / "quantstudio-spm").string();
#ifdef QS_SPM_ENCODER_BUILD_PATH
    if (fs::exists(QS_SPM_ENCODER_BUILD_PATH))
        return QS_SPM_ENCODER_BUILD_PATH;
#endif
    fail("SentencePiece tokenizer: the program quantstudio-spm is not beside ", self.string(),
        " (set QS_SPM_ENCODER to its path)");
}

// A temporary file holding `bytes`, removed with the object.
class TempFile {
public:
    explicit TempFile(std::string_view bytes)
    {
        std::string name = (fs::temp_directory_path() / "quantstudio-spm-XXXXXX").string();
        const int fd = mkstemp(name.data());
        if (fd < 0)
            fail("SentencePiece tokenizer: cannot create a temporary file in ", fs::temp_directory_path().string(),
                " (", std::strerror(errno), ")");
        path_ = name;
        for (std::size_t at = 0; at < bytes.size();) {
            const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                ::close(fd);
                fail("SentencePiece tokenizer: cannot write ", path_, " (", std::strerror(errno), ")");
            }
            at += std::size_t(n);
        }
        ::close(fd);
    }
    ~TempFile()
    {
        std::error_code ec;
        fs::remove(path_, ec);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// quantstudio-spm MODEL TEXT: the piece count followed by the ids.
std::vector<int32_t> runSpmEncoder(const std::string& model, std::string_view text)
{
    const TempFile input(text);
    const std::string exe = spmEncoderPath();
    int fd[2];
    if (pipe2(fd, O_CLOEXEC) != 0)
        fail("SentencePiece tokenizer: pipe failed (", std::strerror(errno), ")");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fd[1], 1);
    std::vector<std::string> args = {exe, model, input.path()};
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fd[1]);
    if (spawned != 0) {
        ::close(fd[0]);
        fail("SentencePiece tokenizer: cannot run ", exe, " (", std::strerror(spawned), ")");
    }
    std::string out;
    char buf[1 << 16];
    while (true) {
        const ssize_t n = ::read(fd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out.append(buf, std::size_t(n));
    }
    ::close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) { }
    if (!WIFEXITED(status))
        fail(model, ": the SentencePiece encoder ", exe, " stopped (signal ",
            WIFSIGNALED(status) ? WTERMSIG(status) : 0, ")");
    if (WEXITSTATUS(status) != 0) {
        std::replace(out.begin(), out.end(), '\n', ' ');
        fail(out.empty() ? str(model, ": the SentencePiece encoder failed") : out);
    }
    if (out.size() < sizeof(int32_t) || out.size() % sizeof(int32_t) != 0)
        fail(model, ": the SentencePiece encoder wrote ", out.size(), " bytes, not a piece count and int32 ids");
    std::vector<int32_t> ids(out.size() / sizeof(int32_t));
    std::memcpy(ids.data(), out.data(), out.size());
    return ids;
}

class SentencePieceTokenizer : public Tokenizer {
public:
    explicit SentencePieceTokenizer(const std::string& path) : path_(path)
    {
        if (!fs::is_regular_file(path))
            fail(path, ": no such SentencePiece model file");
        pieces_ = runSpmEncoder(path_, {}).front();
        if (pieces_ <= 0)
            fail(path, ": the SentencePiece model has no pieces");
    }

    std::vector<int32_t> encode(std::string_view text) const override
    {
        std::vector<int32_t> ids = runSpmEncoder(path_, text);
        ids.erase(ids.begin());
        return ids;
    }

    int64_t vocabSize() const override { return pieces_; }

private:
    std::string path_;
    int64_t pieces_ = 0;
};

} // namespace

std::string tokenizerPath(const std::string& spec)
{
    for (const char* prefix : {"spm:", "hf:"})
        if (spec.rfind(prefix, 0) == 0)
            return spec.substr(std::string(prefix).size());
    return spec;
}

std::string canonicalTokenizerSpec(const std::string& spec)
{
    const std::string path = tokenizerPath(spec);
    if (path.empty())
        fail("--tokenizer ", quoted(spec), ": expected spm:FILE.model or hf:tokenizer.json");
    const std::string absolute = fs::absolute(path).lexically_normal().string();
    if (spec.rfind("spm:", 0) == 0 || (spec == path && path.ends_with(".model")))
        return "spm:" + absolute;
    if (spec.rfind("hf:", 0) == 0 || (spec == path && path.ends_with(".json")))
        return "hf:" + absolute;
    fail("--tokenizer ", quoted(spec), ": expected spm:FILE (SentencePiece) or hf:FILE (tokenizer.json); ",
        "a bare file must end in .model or .json");
}

std::unique_ptr<Tokenizer> loadTokenizer(const std::string& spec)
{
    const std::string canonical = canonicalTokenizerSpec(spec);
    const std::string path = tokenizerPath(spec);
    if (canonical.rfind("spm:", 0) == 0)
        return std::make_unique<SentencePieceTokenizer>(path);
    return loadHfTokenizer(path);
}

void checkUtf8(std::string_view text, const std::string& label)
{
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned c = s[i];
        std::size_t len = 0;
        uint32_t cp = 0, min = 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07, min = 0x10000;
        bool ok = len > 0 && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) {
            ok = (s[i + k] & 0xC0) == 0x80;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            fail(label, ": invalid UTF-8 at byte ", i, " (a tokenizer needs UTF-8 text)");
        i += len;
    }
}

} // namespace qs
