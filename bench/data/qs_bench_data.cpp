// Images per second through decode + preprocess, as every data command reads an image
// folder: loadDataset(images:DIR) and Dataset::batch at batch 32, with 1 and 2 decoding
// threads (the 1-thread rate is the baseline of the ratio), and a plain serial decode
// without preprocessing for the split. The images are JPEGs of ImageNet's typical size
// written here with libjpeg (quality 90), unless --images DIR gives a folder.
//
//   qs_bench_data [--images DIR] [--count 256] [--width 500] [--height 375]
//       [--preprocess torchvision] [--batch 32] [--repeat 3]
//
// Prints one JSON line with the CPU's ISA.
#include "../bench_util.h"

#include "data/dataset.h"
#include "data/image.h"
#include "data/image_dataset.h"
#include "runtime/cpu_isa.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace qs;

namespace {

double seconds(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A smooth picture with noise (compresses like a photo, unlike flat color or pure noise).
void writeJpeg(const std::string& path, int width, int height, std::mt19937& rng)
{
    std::vector<unsigned char> rgb(std::size_t(width) * std::size_t(height) * 3);
    std::normal_distribution<float> noise(0.f, 10.f);
    const float fx = float(rng() % 7 + 3), fy = float(rng() % 5 + 4);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            const float v[3] = {128 + 100 * std::sin(float(x) / fx) * std::cos(float(y) / fy),
                255.f * float(x) / float(width), 255.f * float(y) / float(height)};
            for (int c = 0; c < 3; ++c)
                rgb[(std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3 + std::size_t(c)] =
                    static_cast<unsigned char>(std::clamp(v[c] + noise(rng), 0.f, 255.f));
        }
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f)
        fail(path, ": cannot write");
    jpeg_compress_struct c;
    jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = JDIMENSION(width);
    c.image_height = JDIMENSION(height);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = rgb.data() + std::size_t(c.next_scanline) * std::size_t(width) * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::fclose(f);
}

Graph imageModel()
{
    Graph g;
    g.sourcePath = "(bench model [N,3,224,224])";
    ValueInfo x;
    x.name = "x";
    x.dtype = DType::Float;
    x.dims = std::vector<Dim> {{-1, "N"}, {3, ""}, {224, ""}, {224, ""}};
    g.inputs.push_back(x);
    return g;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        std::string images, preprocess = "torchvision";
        int count = 256, width = 500, height = 375, batch = 32, repeat = 3;
        bench::forEachOption(argc, argv, 1, [&](const std::string& name, const std::string& value) {
            if (name == "--images")
                images = value;
            else if (name == "--count")
                count = std::stoi(value);
            else if (name == "--width")
                width = std::stoi(value);
            else if (name == "--height")
                height = std::stoi(value);
            else if (name == "--preprocess")
                preprocess = value;
            else if (name == "--batch")
                batch = std::stoi(value);
            else if (name == "--repeat")
                repeat = std::stoi(value);
            else
                fail(name, ": unknown option");
        });
        fs::path made;
        if (images.empty()) {
            made = fs::temp_directory_path() / ("qs_bench_data_" + std::to_string(::getpid()));
            fs::create_directories(made);
            std::mt19937 rng(1);
            for (int i = 0; i < count; ++i) {
                char name[32];
                std::snprintf(name, sizeof name, "%05d.jpg", i);
                writeJpeg((made / name).string(), width, height, rng);
            }
            images = made.string();
        }
        const Graph model = imageModel();
        DataOptions o;
        o.spec = "images:" + images;
        o.preprocess = preprocess;
        // Serial decode only: what the preprocessing adds on top.
        const ImageListing listing = listImageFolder(images, std::nullopt);
        std::vector<double> decodeRuns;
        for (int r = 0; r < repeat; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            for (const auto& f : listing.files)
                readImage(f);
            decodeRuns.push_back(double(listing.files.size()) / seconds(t0));
        }
        nlohmann::json out = {{"bench", "data"}, {"isa", detectCpuIsa().summary()}, {"images", listing.files.size()},
            {"batch", batch}, {"preprocess", preprocess}, {"decode_only_1t_images_per_s", bench::median(decodeRuns)}};
        double base = 0;
        for (int threads : {1, 2}) {
            std::vector<double> runs;
            for (int r = 0; r < repeat; ++r) {
                o.threads = threads;
                const Dataset ds = loadDataset(o, model); // hashing the files is not timed
                const auto t0 = std::chrono::steady_clock::now();
                for (int64_t s = 0; s < ds.count(); s += batch)
                    ds.batch(s, std::min<int64_t>(batch, ds.count() - s));
                runs.push_back(double(ds.count()) / seconds(t0));
            }
            const double ips = bench::median(runs);
            if (threads == 1)
                base = ips;
            out["decode_preprocess_" + std::to_string(threads) + "t_images_per_s"] = ips;
            if (threads > 1)
                out["ratio_" + std::to_string(threads) + "t_vs_1t"] = ips / base;
        }
        std::printf("%s\n", out.dump().c_str());
        if (!made.empty())
            fs::remove_all(made);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qs_bench_data: %s\n", e.what());
        return 1;
    }
}
