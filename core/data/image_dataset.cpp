// Image datasets: listing folders and list files, and the streaming decoder pool.
#include "data/image_dataset.h"

#include "data/input_binding.h"
#include "util/error.h"
#include "util/file.h"
#include "util/hash.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace qs {

namespace {

constexpr const char* kImages = "images:";
constexpr const char* kImageList = "imagelist:";

std::string trimmed(const std::string& s)
{
    const auto a = s.find_first_not_of(" \t\r\n");
    if (a == std::string::npos)
        return {};
    return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

std::vector<std::string> textLines(const std::string& path)
{
    std::vector<std::string> out;
    std::istringstream in(readRegularFile(path, kMaxDataFileBytes));
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

// Class name -> label from an index file: one class per line, its first word.
std::map<std::string, int64_t> readClassIndex(const std::string& path)
{
    std::map<std::string, int64_t> out;
    int64_t label = 0, lineNo = 0;
    for (const std::string& raw : textLines(path)) {
        ++lineNo;
        const std::string line = trimmed(raw);
        if (line.empty() || line[0] == '#')
            continue;
        const std::string name = line.substr(0, line.find_first_of(" \t,"));
        if (!out.emplace(name, label).second)
            fail(path, ":", lineNo, ": class ", quoted(name), " is listed twice");
        ++label;
    }
    if (out.empty())
        fail(path, ": lists no classes (one class folder name per line, in the model's order)");
    return out;
}

std::optional<int64_t> wholeNumber(const std::string& text)
{
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return v;
}

std::vector<std::string> sortedImages(const fs::path& dir, bool recursive)
{
    std::vector<std::string> files;
    auto take = [&](const fs::directory_entry& e) {
        if (e.is_regular_file() && isImageFileName(e.path().string()))
            files.push_back(e.path().string());
    };
    if (recursive)
        for (const auto& e : fs::recursive_directory_iterator(dir))
            take(e);
    else
        for (const auto& e : fs::directory_iterator(dir))
            take(e);
    std::sort(files.begin(), files.end());
    return files;
}

// The worker pool behind a streamed image input.
class ImageStream final : public SampleStream {
public:
    ImageStream(std::vector<std::string> files, const Preprocess& p, int threads, int prefetch, CancelToken cancel)
        : files_(std::move(files)), p_(p), shape_(p.sampleShape()), prefetch_(std::max(prefetch, 0)),
          cancel_(std::move(cancel))
    {
        per_ = numelOf(shape_);
        for (int i = 0; i < std::max(threads, 1); ++i)
            threads_.emplace_back([this] { work(); });
    }

    ~ImageStream() override
    {
        {
            std::lock_guard lock(m_);
            stop_ = true;
            tasks_.clear();
        }
        wake_.notify_all();
        for (auto& t : threads_)
            t.join();
    }

    Tensor read(int64_t start, int64_t n) const override
    {
        const int64_t total = int64_t(files_.size());
        if (start < 0 || n < 0 || start + n > total)
            fail("images: samples [", start, ", ", start + n, ") are outside 0..", total);
        std::unique_lock lock(m_);
        std::shared_ptr<Batch> b;
        if (auto it = ahead_.find(start); it != ahead_.end() && it->second->n == n) {
            b = it->second;
            ahead_.erase(it);
        }
        // Batches prepared for another order of reading are dropped.
        for (auto it = ahead_.begin(); it != ahead_.end();)
            if (it->first < start + n) {
                it->second->abandoned = true;
                it = ahead_.erase(it);
            } else {
                ++it;
            }
        if (!b)
            b = enqueue(start, n, true);
        for (int64_t next = start + n, k = 0; k < prefetch_ && n > 0 && next < total; ++k) {
            const int64_t m = std::min(n, total - next);
            if (!ahead_.count(next))
                ahead_[next] = enqueue(next, m, false);
            next += m;
        }
        lock.unlock();
        wake_.notify_all();
        lock.lock();
        while (b->pending > 0) {
            done_.wait_for(lock, std::chrono::milliseconds(50));
            if (cancel_.cancelled())
                break;
        }
        if (cancel_.cancelled()) {
            for (auto& [s, a] : ahead_)
                a->abandoned = true;
            ahead_.clear();
            b->abandoned = true;
            throw Cancelled();
        }
        if (!b->error.empty())
            throw Error(b->error);
        return std::move(b->out);
    }

private:
    struct Batch {
        int64_t start = 0, n = 0;
        Tensor out;
        int64_t pending = 0;
        bool abandoned = false;
        std::string error;
    };

    // Lock held. The batch's samples go to the queue's front when asked for now.
    std::shared_ptr<Batch> enqueue(int64_t start, int64_t n, bool now) const
    {
        auto b = std::make_shared<Batch>();
        b->start = start;
        b->n = n;
        Shape shape = shape_;
        shape.insert(shape.begin(), n);
        b->out = Tensor(DType::Float, shape);
        b->pending = n;
        for (int64_t i = 0; i < n; ++i) {
            if (now)
                tasks_.emplace_front(b, start + n - 1 - i);
            else
                tasks_.emplace_back(b, start + i);
        }
        return b;
    }

    void work()
    {
        std::unique_lock lock(m_);
        for (;;) {
            wake_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
            if (stop_)
                return;
            auto [b, index] = tasks_.front();
            tasks_.pop_front();
            const bool skip = b->abandoned || !b->error.empty() || cancel_.cancelled();
            lock.unlock();
            std::string error;
            if (!skip) {
                try {
                    const Image im = readImage(files_[std::size_t(index)]);
                    preprocessImage(im, p_, b->out.data<float>().data() + (index - b->start) * per_);
                } catch (const std::exception& e) {
                    error = e.what();
                }
            }
            lock.lock();
            if (!error.empty() && b->error.empty())
                b->error = error;
            if (--b->pending == 0)
                done_.notify_all();
        }
    }

    const std::vector<std::string> files_;
    const Preprocess p_;
    const Shape shape_;
    int64_t per_ = 0;
    const int prefetch_;
    const CancelToken cancel_;
    mutable std::mutex m_;
    mutable std::condition_variable wake_, done_;
    mutable std::deque<std::pair<std::shared_ptr<Batch>, int64_t>> tasks_;
    mutable std::map<int64_t, std::shared_ptr<Batch>> ahead_; // by first sample
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

} // namespace

bool isImageDataSpec(const std::string& spec)
{
    return spec.rfind(kImages, 0) == 0 || spec.rfind(kImageList, 0) == 0;
}

ImageListing listImageFolder(const std::string& dir, const std::optional<std::string>& classIndex)
{
    if (!fs::is_directory(dir))
        fail("images:", dir, ": no such folder");
    ImageListing out;
    std::vector<std::string> classes;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory())
            classes.push_back(e.path().filename().string());
    std::sort(classes.begin(), classes.end());
    const std::vector<std::string> top = sortedImages(dir, false);
    if (classes.empty()) {
        if (classIndex)
            fail("images:", dir, ": --labels ", *classIndex, " maps class folders, and the folder has none");
        out.files = top;
    } else {
        if (!top.empty())
            fail("images:", dir, ": holds images (", quoted(fs::path(top.front()).filename().string()),
                ") beside class folders; put every image in its class folder");
        std::map<std::string, int64_t> index;
        if (classIndex)
            index = readClassIndex(*classIndex);
        out.labels.emplace();
        if (classIndex) {
            out.classes.resize(index.size());
            for (const auto& [name, label] : index)
                out.classes[std::size_t(label)] = name;
        } else {
            out.classes = classes;
        }
        for (std::size_t c = 0; c < classes.size(); ++c) {
            int64_t label = int64_t(c);
            if (classIndex) {
                auto it = index.find(classes[c]);
                if (it == index.end())
                    fail("images:", dir, ": class folder ", quoted(classes[c]), " is not in --labels ", *classIndex);
                label = it->second;
            }
            for (auto& f : sortedImages(fs::path(dir) / classes[c], true)) {
                out.files.push_back(std::move(f));
                out.labels->push_back(label);
            }
        }
    }
    if (out.files.empty())
        fail("images:", dir, ": no .jpg, .jpeg, .png or .bmp files");
    return out;
}

ImageListing readImageList(const std::string& listFile, const std::optional<std::string>& classIndex)
{
    std::map<std::string, int64_t> index;
    ImageListing out;
    if (classIndex) {
        index = readClassIndex(*classIndex);
        out.classes.resize(index.size());
        for (const auto& [name, label] : index)
            out.classes[std::size_t(label)] = name;
    }
    const fs::path base = fs::path(listFile).parent_path();
    std::vector<int64_t> labels;
    int64_t lineNo = 0;
    std::optional<bool> labelled;
    for (const std::string& raw : textLines(listFile)) {
        ++lineNo;
        const std::string line = trimmed(raw);
        if (line.empty() || line[0] == '#')
            continue;
        if (out.files.empty() && labels.empty()) {
            std::string lower = line;
            std::transform(
                lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
            if (lower == "path,label" || lower == "path")
                continue;
        }
        std::string path = line, label;
        if (const auto comma = line.rfind(','); comma != std::string::npos) {
            path = trimmed(line.substr(0, comma));
            label = trimmed(line.substr(comma + 1));
        } else if (const auto space = line.find_last_of(" \t"); space != std::string::npos) {
            const std::string last = line.substr(space + 1);
            if (wholeNumber(last) || index.count(last)) {
                path = trimmed(line.substr(0, space));
                label = last;
            }
        }
        const std::string at = str(listFile, ":", lineNo);
        if (labelled && *labelled != !label.empty())
            fail(at, ": ", label.empty() ? "has no label" : "has a label", " unlike the lines before it");
        labelled = !label.empty();
        if (!label.empty()) {
            std::optional<int64_t> v = wholeNumber(label);
            if (!v && index.count(label))
                v = index.at(label);
            if (!v || *v < 0)
                fail(at, ": label ", quoted(label), " is not a class number",
                    classIndex ? " or a class of --labels " + *classIndex : std::string(""));
            labels.push_back(*v);
        }
        if (path.empty())
            fail(at, ": no image path");
        const fs::path p = fs::path(path).is_absolute() ? fs::path(path) : base / path;
        out.files.push_back(p.string());
    }
    if (out.files.empty())
        fail(listFile, ": lists no images (lines \"path,label\" or \"path\")");
    if (labelled && *labelled)
        out.labels = std::move(labels);
    return out;
}

std::shared_ptr<const SampleStream> imageStream(
    std::vector<std::string> files, const Preprocess& p, int threads, int prefetch, CancelToken cancel)
{
    return std::make_shared<ImageStream>(std::move(files), p, threads, prefetch, std::move(cancel));
}

Shape imageSampleShape(const ValueInfo& in, const std::map<std::string, Shape>& inputShapes)
{
    Shape modelSample(3, -1);
    if (in.dims) {
        modelSample = in.shape();
        if (!modelSample.empty())
            modelSample.erase(modelSample.begin());
    }
    if (auto g = inputShapes.find(in.name); g != inputShapes.end() && g->second.size() == 4)
        for (std::size_t i = 0; i < 3 && i < modelSample.size(); ++i)
            if (modelSample[i] < 0)
                modelSample[i] = g->second[i + 1];
    return modelSample;
}

Dataset loadImageDataset(const DataOptions& options, const Graph& model)
{
    const bool list = options.spec.rfind(kImageList, 0) == 0;
    const std::string path = options.spec.substr(list ? std::strlen(kImageList) : std::strlen(kImages));
    if (path.empty())
        fail("data ", quoted(options.spec), ": expected images:DIR or imagelist:FILE");
    if (options.mean || options.std)
        fail("data ", quoted(options.spec), ": --mean and --std do not apply to images; give them in --preprocess ",
            "(mean=a:b:c,std=a:b:c)");
    if (options.preprocess.empty())
        fail("data ", quoted(options.spec), ": images need --preprocess (torchvision, paddleocr-rec, yolo or items)");
    if (model.inputs.empty())
        fail(model.sourcePath, ": the model has no inputs");
    const ValueInfo& in = model.inputs.front();
    if (in.dtype != DType::Float && in.dtype != DType::Undefined)
        fail("data ", quoted(options.spec), ": input ", quoted(in.name), " is ", dtypeName(in.dtype),
            "; images are preprocessed to float32");
    ImageListing listing = list ? readImageList(path, options.labelsPath) : listImageFolder(path, options.labelsPath);
    if (options.limit >= 0 && options.limit < int64_t(listing.files.size())) {
        listing.files.resize(std::size_t(options.limit));
        if (listing.labels)
            listing.labels->resize(std::size_t(options.limit));
    }

    DataInput d;
    d.name = in.name;
    d.source = options.spec;
    d.batchAxis = batchAxisOf(model, in);
    if (d.batchAxis != 0)
        fail("data ", quoted(options.spec), ": input ", quoted(in.name), " ", in.text(),
            " has no leading batch dimension; images feed [N, 3, H, W] or [N, H, W, 3]");
    const Preprocess p = resolvePreprocess(parsePreprocess(options.preprocess),
        imageSampleShape(in, options.inputShapes), str("input ", quoted(in.name), " ", in.text()));
    const Shape sample = bindSampleShape(model, in, 0, options.inputShapes, p.sampleShape(), options.spec);
    Shape all = sample;
    all.insert(all.begin(), int64_t(listing.files.size()));
    d.samples.dtype = DType::Float;
    d.samples.shape = all;
    const int threads =
        options.threads > 0 ? options.threads : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));

    Dataset ds;
    ds.kind = list ? "imagelist" : "images";
    ds.path = options.spec;
    ds.preprocess = p.text();
    ds.classes = listing.classes;
    ds.labels = listing.labels;
    if (options.labelsPath)
        ds.labelsPath = *options.labelsPath;
    // Identity: every file's content and name, the labels and the pipeline.
    std::string ids;
    const fs::path root = list ? fs::path(path).parent_path() : fs::path(path);
    for (std::size_t i = 0; i < listing.files.size(); ++i) {
        ids += fs::path(listing.files[i]).lexically_relative(root).generic_string() + "=" +
            sha256File(listing.files[i]) + (listing.labels ? "," + std::to_string((*listing.labels)[i]) : "") + ";";
        options.cancel.check();
    }
    ds.hash = sha256Hex(ids + "#preprocess=" + ds.preprocess);
    d.stream = imageStream(std::move(listing.files), p, threads, options.prefetchBatches, options.cancel);
    ds.inputs.push_back(std::move(d));
    return ds;
}

} // namespace qs
