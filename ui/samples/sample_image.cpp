#include "ui/samples/sample_image.h"

#include "data/preprocess.h"
#include "util/error.h"

#include <QStringList>

#include <algorithm>
#include <cmath>

namespace qs::ui {

std::optional<ImageLayout> imageLayout(const Dataset& data, QString* why)
{
    auto no = [why](const QString& reason) -> std::optional<ImageLayout> {
        if (why)
            *why = reason;
        return std::nullopt;
    };
    if (data.kind == "text")
        return no(QStringLiteral("the data is text (token windows), not images"));
    if (data.inputs.empty())
        return no(QStringLiteral("the data has no inputs"));
    // The type and shape only: streamed images are not decoded for them.
    const Tensor& first = data.inputs.front().samples;
    if (first.dtype != DType::Float)
        return no(QStringLiteral("the inputs are not float images"));
    const Shape& s = first.shape;
    ImageLayout l;
    if (s.size() == 4 && (s[1] == 1 || s[1] == 3)) {
        l.channels = int(s[1]);
        l.height = int(s[2]);
        l.width = int(s[3]);
    } else if (s.size() == 3) {
        l.height = int(s[1]);
        l.width = int(s[2]);
    } else {
        QStringList dims;
        for (int64_t d : s)
            dims << QString::number(d);
        return no(QStringLiteral("the inputs [%1] are not images ([N,1|3,H,W] or [N,H,W])").arg(dims.join(QLatin1Char(','))));
    }
    if (l.height <= 0 || l.width <= 0)
        return no(QStringLiteral("the images are empty"));
    return l;
}

int thumbnailScale(const ImageLayout& layout, int target)
{
    return std::max(1, target / std::max(layout.height, layout.width));
}

QImage sampleImage(const Dataset& data, int64_t index, int scale)
{
    QString why;
    const auto layout = imageLayout(data, &why);
    if (!layout)
        fail("dataset ", quoted(data.path), ": ", why.toStdString());
    if (index < 0 || index >= data.count())
        fail("dataset ", quoted(data.path), ": sample ", index, " is not in 0..", data.count() - 1);
    scale = std::max(1, scale);
    const int h = layout->height, w = layout->width, c = layout->channels;
    const int64_t plane = int64_t(h) * w;
    // This sample only (streamed images: decoded now, not the whole data).
    const DataInput& in = data.inputs.front();
    const Tensor sample = samplesFirst(in.batch(index, 1), in.batchAxis);
    const float* x = sample.data<float>().data();
    // Images undo their pipeline's normalization (channel order included), other data --mean/--std.
    std::vector<float> mean = data.mean, std = data.std;
    float toUnit = 1; // preprocessed value * toUnit -> 0..1
    bool bgr = false;
    if (!data.preprocess.empty()) {
        const Preprocess p = parsePreprocess(data.preprocess);
        mean = p.mean;
        std = p.std;
        toUnit = float(1 / (p.scale * 255));
        bgr = p.bgr;
    }
    auto level = [&](int ch, int64_t i) {
        if (bgr && c == 3)
            ch = 2 - ch;
        float v = x[ch * plane + i];
        if (!std.empty())
            v *= std[std.size() == 1 ? 0 : std::size_t(ch)];
        if (!mean.empty())
            v += mean[mean.size() == 1 ? 0 : std::size_t(ch)];
        return int(std::lround(std::clamp(v * toUnit, 0.f, 1.f) * 255.f));
    };
    QImage img(w * scale, h * scale, QImage::Format_RGB32);
    for (int y = 0; y < h; ++y)
        for (int px = 0; px < w; ++px) {
            const int64_t i = int64_t(y) * w + px;
            const int r = level(0, i), g = c == 3 ? level(1, i) : r, b = c == 3 ? level(2, i) : r;
            const QRgb rgb = qRgb(r, g, b);
            for (int dy = 0; dy < scale; ++dy) {
                auto* line = reinterpret_cast<QRgb*>(img.scanLine(y * scale + dy));
                std::fill(line + px * scale, line + (px + 1) * scale, rgb);
            }
        }
    return img;
}

} // namespace qs::ui
