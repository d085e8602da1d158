// quantstudio-cli run MODEL [--data DATA] ...: runs a model over a dataset with the
// oneDNN runtime and prints throughput and, when labels exist, top-1 accuracy; on
// text:FILE data (token windows) the next-token perplexity.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/recording.h"

#include "cli/data_args.h"
#include "data/dataset.h"
#include "data/input_binding.h"
#include "data/npy.h"
#include "data/npz.h"
#include "graph/onnx_import.h"
#include "measure/perplexity.h"
#include "runtime/passes/passes.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

namespace qs::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct RunSummary {
    std::string model, data;
    int64_t images = 0, batch = 0;
    int threads = 0;
    double seconds = 0; // inference only (compile and data loading excluded)
    double compileSeconds = 0;
    std::optional<double> top1;
    std::optional<double> perplexity; // text data: exp(mean next-token NLL)
    int64_t tokens = 0;               // text data: scored tokens
};

// Every output of every sample, sample-first ([N, ...] whatever the model's batch
// axis), for --save-outputs: NPY for one output, NPZ with one array per output name.
class OutputCollector {
public:
    OutputCollector(const Graph& g, int64_t samples) : graph_(g), samples_(samples) { }

    void add(const std::vector<Tensor>& outputs, int64_t n)
    {
        for (std::size_t i = 0; i < outputs.size() && i < graph_.outputs.size(); ++i) {
            const std::string& name = graph_.outputs[i].name;
            const Tensor& t = outputs[i];
            const auto& dims = graph_.outputs[i].dims;
            // The declared shape names the batch axis; without one (or a wrong rank), axis 0.
            const int axis = dims && dims->size() == t.shape.size() ? batchAxisOf(graph_, graph_.outputs[i]) : 0;
            Tensor rows;
            if (axis >= 0 && std::size_t(axis) < t.shape.size() && t.shape[std::size_t(axis)] == n) {
                rows = samplesFirst(t, axis);
            } else if (n == 1) { // the whole output is the sample's
                rows = t;
                rows.shape.insert(rows.shape.begin(), 1);
            } else {
                fail("--save-outputs: output ", quoted(name), " has shape ", shapeString(t.shape),
                    ", no batch axis of ", n, " samples; run with --batch 1");
            }
            auto [it, fresh] = arrays_.try_emplace(name);
            Tensor& all = it->second;
            const Shape sample(rows.shape.begin() + 1, rows.shape.end());
            if (fresh) {
                Shape shape = sample;
                shape.insert(shape.begin(), 0);
                all = Tensor(rows.dtype, shape);
                all.bytes.reserve(std::size_t(samples_) * (rows.bytes.size() / std::size_t(n)));
            } else if (Shape(all.shape.begin() + 1, all.shape.end()) != sample || all.dtype != rows.dtype) {
                fail("--save-outputs: output ", quoted(name), " changes shape between batches (",
                    shapeString(Shape(all.shape.begin() + 1, all.shape.end())), " then ", shapeString(sample),
                    "); run with --batch 1");
            }
            all.bytes.insert(all.bytes.end(), rows.bytes.begin(), rows.bytes.end());
            all.shape[0] += n;
        }
    }

    void write(const std::string& path) const
    {
        NamedTensors out;
        for (const auto& o : graph_.outputs)
            out.emplace_back(o.name, arrays_.at(o.name));
        if (path.ends_with(".npy"))
            writeNpy(out.front().second, path);
        else
            writeNpz(out, path);
    }

private:
    const Graph& graph_;
    int64_t samples_;
    std::map<std::string, Tensor> arrays_;
};


int runRun(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"batch", "limit", "threads", "db", "save-outputs", "precision"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    Args args(argv, valued, {"json"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    const int batch = args.intValue("batch", 32);
    const int threads = args.intValue("threads", 0);
    if (batch < 1)
        fail("--batch must be at least 1, got ", batch);
    if (threads < 0)
        fail("--threads must be 0 (all cores) or more, got ", threads);
    // BF16 as the target precision (CompileOptions::bf16): the products with constant
    // weights read bfloat16 inputs and weights, accumulating in float32.
    const std::string precision = args.value("precision").value_or("fp32");
    if (precision != "fp32" && precision != "bf16")
        fail("--precision ", precision, ": expected fp32 or bf16");

    // Shared with the plans: the weights are held once, not copied into each plan.
    const auto shared = std::make_shared<const Graph>(importOnnx(path));
    const Graph& g = *shared;
    const std::optional<std::string> saveTo = args.value("save-outputs");
    if (saveTo && !saveTo->ends_with(".npz") && !(saveTo->ends_with(".npy") && g.outputs.size() == 1))
        fail("--save-outputs ", *saveTo, ": expected OUT.npz", g.outputs.size() == 1 ? " or OUT.npy" : "",
            g.outputs.size() > 1 ? str(" (the model has ", g.outputs.size(), " outputs)") : "");

    const DataOptions dopts = dataOptions(args, "limit", "random:256");
    Dataset data = loadDataset(dopts, g);
    if (data.count() == 0)
        fail(dopts.spec, ": no samples");

    // Opened before the work so a bad --db fails fast; the run row is written as
    // `running` first and finalized with the metrics (or the error) at the end.
    std::optional<Store> store = storeFromArgs(args);

    RunSummary s;
    s.model = path;
    s.data = dopts.spec;
    s.images = data.count();
    s.batch = std::min<int64_t>(batchFor(g, batch), data.count()); // 1 when the model fixes its batch to 1

    // One plan for the full batches, one for the remainder: shapes are fixed per plan.
    // Inference only, so the graph optimizer runs first (QS_RUNTIME_PASSES).
    auto t0 = Clock::now();
    CompileOptions copts;
    copts.threads = threads;
    copts.bf16 = precision == "bf16";
    copts.inputShapes = data.inputShapes(s.batch);
    auto plan = compileOptimizedPlan(shared, copts);
    std::unique_ptr<Plan> tail;
    const int64_t rest = data.count() % s.batch;
    if (rest) {
        copts.inputShapes = data.inputShapes(rest);
        tail = compileOptimizedPlan(shared, copts);
    }
    std::optional<OutputCollector> saved;
    if (saveTo)
        saved.emplace(g, data.count());
    s.compileSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
    s.threads = threads;

    auto measure = [&] {
        int64_t correct = 0;
        double seconds = 0;
        PerplexityMeter ppl;
        for (int64_t start = 0; start < data.count(); start += s.batch) {
            const int64_t n = std::min<int64_t>(s.batch, data.count() - start);
            const std::vector<Tensor> in = data.batch(start, n);
            auto t = Clock::now();
            std::vector<Tensor> out = (n == s.batch ? plan : tail)->run(in);
            seconds += std::chrono::duration<double>(Clock::now() - t).count();
            if (saved)
                saved->add(out, n);
            if (data.targets)
                ppl.add(out.at(0), data.targetBatch(start, n));
            if (data.labels) {
                const Tensor& logits = out.at(0);
                if (logits.shape.empty() || logits.shape[0] != n)
                    fail(path, ": output ", quoted(logits.name), " has shape ", shapeString(logits.shape),
                        "; top-1 needs [batch, classes]");
                const std::vector<float> v = logits.toFloat();
                const int64_t classes = logits.numel() / n;
                for (int64_t i = 0; i < n; ++i) {
                    int64_t best = 0;
                    for (int64_t k = 1; k < classes; ++k)
                        if (v[std::size_t(i * classes + k)] > v[std::size_t(i * classes + best)])
                            best = k;
                    correct += best == (*data.labels)[std::size_t(start + i)] ? 1 : 0;
                }
            }
        }
        s.seconds = seconds;
        if (data.labels)
            s.top1 = double(correct) / double(data.count());
        if (data.targets) {
            s.perplexity = ppl.perplexity();
            s.tokens = ppl.tokens();
        }
    };

    std::optional<int64_t> runId;
    if (store) {
        RunStart start = runStart(*store, RunKind::Inference, g, path, data,
            {{"data", dopts.spec}, {"limit", dopts.limit}, {"batch", s.batch}, {"threads", threads},
                {"mean", data.mean}, {"std", data.std}, {"precision", precision}});
        if (!data.preprocess.empty())
            start.config["preprocess"] = data.preprocess;
        if (!data.tokenizer.empty())
            start.config["tokenizer"] = data.tokenizer;
        if (data.targets)
            start.config["context"] = data.inputs.front().samples.shape.at(1);
        runId = recordRun(*store, start, [&](RunGuard&) {
            measure();
            RunMetrics m;
            m.top1 = s.top1;
            const int64_t batches = (s.images + s.batch - 1) / s.batch;
            m.latencyMs = 1000.0 * s.seconds / double(batches);
            m.extra = {{"images", s.images}, {"images_per_second", s.seconds > 0 ? double(s.images) / s.seconds : 0.0},
                {"compile_seconds", s.compileSeconds}};
            if (s.perplexity) {
                m.extra["perplexity"] = *s.perplexity;
                m.extra["tokens"] = s.tokens;
                m.extra["tokens_per_second"] = s.seconds > 0 ? double(s.tokens) / s.seconds : 0.0;
            }
            return m;
        });
    } else {
        measure();
    }

    if (saved)
        saved->write(*saveTo);

    const double ips = s.seconds > 0 ? double(s.images) / s.seconds : 0;
    if (args.flag("json")) {
        nlohmann::json j {{"model", s.model}, {"data", s.data}, {"images", s.images}, {"batch", s.batch},
            {"threads", s.threads}, {"precision", precision}, {"seconds", s.seconds}, {"compile_seconds", s.compileSeconds},
            {"images_per_second", ips}, {"top1", s.top1 ? nlohmann::json(*s.top1) : nlohmann::json(nullptr)},
            {"run_id", runId ? nlohmann::json(*runId) : nlohmann::json(nullptr)}};
        if (s.perplexity) {
            j["perplexity"] = *s.perplexity;
            j["tokens"] = s.tokens;
            j["context"] = data.inputs.front().samples.shape.at(1);
            if (!data.tokenizer.empty())
                j["tokenizer"] = data.tokenizer;
            j["tokens_per_second"] = s.seconds > 0 ? double(s.tokens) / s.seconds : 0.0;
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("model       %s\n", s.model.c_str());
    std::printf("data        %s (%s, %lld %s)\n", s.data.c_str(), data.kind.c_str(), (long long)s.images,
                data.targets ? "windows" : "images");
    std::printf(
        "batch       %lld, threads %s, precision %s\n", (long long)s.batch,
        s.threads ? std::to_string(s.threads).c_str() : "all", precision.c_str());
    std::printf("compile     %.3f s\n", s.compileSeconds);
    if (saveTo)
        std::printf("outputs     %s (%zu array%s of %lld samples)\n", saveTo->c_str(), g.outputs.size(),
            g.outputs.size() == 1 ? "" : "s", (long long)s.images);
    std::printf("inference   %.3f s, %.1f images/s\n", s.seconds, ips);
    if (s.perplexity)
        std::printf("perplexity  %.6f over %lld tokens (context %lld, %.1f tokens/s)\n", *s.perplexity,
            (long long)s.tokens, (long long)data.inputs.front().samples.shape.at(1),
            s.seconds > 0 ? double(s.tokens) / s.seconds : 0.0);
    else if (s.top1)
        std::printf("top-1       %.4f\n", *s.top1);
    else
        std::printf("top-1       n/a (no labels)\n");
    if (runId)
        std::printf("run         %lld recorded in %s\n", (long long)*runId, store->path().c_str());
    return 0;
}

const bool registered = registerCommand({"run",
    "MODEL [--data DATA] [--labels PATH] [--batch N] [--limit N] [--threads N] [--mean a,b,c] [--std a,b,c] "
    "[--context N] [--tokenizer spm:FILE|hf:FILE] [--input-value NAME=V,...] [--input-shape NAME=1x3x48x320]... [--preprocess SPEC] "
    "[--data-threads N] [--save-outputs OUT.npy|OUT.npz] [--precision fp32|bf16] [--db DB] [--json]",
    "run a model on a dataset (IDX, NPY, NPZ or a folder of NPY files named after the inputs, random:N, "
    "text:FILE, tokens:FILE.npy|FILE:u16|FILE:u32, or images:DIR / imagelist:FILE with --preprocess "
    "torchvision|paddleocr-rec|yolo|ITEMS), print throughput and top-1, or perplexity on text (non-overlapping "
    "windows of --context tokens: bytes, the ids of --tokenizer (a SentencePiece .model or a Hugging Face "
    "tokenizer.json), or token ids; --limit windows); --save-outputs writes every output of every sample; record "
    "the run with --db; --precision bf16 runs the products with constant weights in bfloat16 (AVX-512 CPUs; "
    "native on AVX512-BF16 or AMX)",
    runRun});

} // namespace
} // namespace qs::cli
