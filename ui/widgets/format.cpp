#include "ui/widgets/format.h"

#include <QLocale>
#include <QStringList>

#include <cmath>
#include <map>

namespace qs::ui {

QString formatCount(int64_t n)
{
    QLocale c(QLocale::English);
    return c.toString(qlonglong(n));
}

QString formatCompact(double n)
{
    const double a = std::abs(n);
    if (a >= 1e9)
        return QString::number(n / 1e9, 'f', a >= 1e10 ? 1 : 2) + QLatin1Char('G');
    if (a >= 1e6)
        return QString::number(n / 1e6, 'f', a >= 1e7 ? 1 : 2) + QLatin1Char('M');
    if (a >= 1e3)
        return QString::number(n / 1e3, 'f', a >= 1e4 ? 1 : 2) + QLatin1Char('k');
    return QString::number(n, 'g', 4);
}

QString formatNumber(double v, int significant)
{
    if (std::isnan(v))
        return QStringLiteral("NaN");
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("\u221E") : QStringLiteral("\u2212\u221E");
    if (v == 0)
        return QStringLiteral("0");
    QString s = QString::number(v, 'g', significant);
    if (s.startsWith(QLatin1Char('-')))
        s.replace(0, 1, QChar(0x2212)); // a real minus sign lines up with digits
    return s;
}

QStringList toQStringList(const std::vector<std::string>& strings)
{
    QStringList out;
    out.reserve(qsizetype(strings.size()));
    for (const auto& s : strings)
        out << QString::fromStdString(s);
    return out;
}

QString formatPercent(double fraction, int decimals)
{
    const double p = fraction * 100.0;
    if (p > 0 && p < std::pow(10.0, -decimals))
        return QStringLiteral("<") + QString::number(std::pow(10.0, -decimals), 'f', decimals) + QStringLiteral(" %");
    return QString::number(p, 'f', decimals) + QStringLiteral(" %");
}

QString formatBytes(uint64_t bytes)
{
    const double b = double(bytes);
    if (b >= 1024.0 * 1024 * 1024)
        return QString::number(b / (1024.0 * 1024 * 1024), 'f', 2) + QStringLiteral(" GiB");
    if (b >= 1024.0 * 1024)
        return QString::number(b / (1024.0 * 1024), 'f', 1) + QStringLiteral(" MiB");
    if (b >= 1024.0)
        return QString::number(b / 1024.0, 'f', 1) + QStringLiteral(" KiB");
    return QString::number(bytes) + QStringLiteral(" B");
}

QString formatDuration(double seconds)
{
    if (seconds < 0)
        return QStringLiteral("\u2026");
    if (seconds < 10)
        return QString::number(seconds, 'f', 1) + QStringLiteral(" s");
    if (seconds < 60)
        return QString::number(int(std::lround(seconds))) + QStringLiteral(" s");
    const int s = int(std::lround(seconds));
    if (s < 3600)
        return QStringLiteral("%1 min %2 s").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60, 2, 10, QLatin1Char('0'));
}

QString formatShape(const Shape& s)
{
    QStringList parts;
    for (int64_t d : s)
        parts << (d < 0 ? QStringLiteral("?") : QString::number(d));
    return QLatin1Char('[') + parts.join(QLatin1Char(',')) + QLatin1Char(']');
}

// A metric's name in words, with its unit.
QString runMetricTitle(const std::string& name)
{
    static const std::map<std::string, QString> titles = {{"top1", QStringLiteral("Top-1 accuracy")},
        {"sqnr_db", QStringLiteral("Output SQNR vs FP32 (dB)")}, {"cosine", QStringLiteral("Output cosine vs FP32")},
        {"top1_agreement", QStringLiteral("Top-1 agreement with FP32")}, {"kl", QStringLiteral("KL vs FP32 (nats)")},
        {"size_bits", QStringLiteral("Model size")}, {"latency_ms", QStringLiteral("Latency per batch (ms)")},
        {"fp32_top1", QStringLiteral("FP32 top-1 accuracy")}, {"fp32_size_bits", QStringLiteral("FP32 model size")},
        {"fp32_latency_ms", QStringLiteral("FP32 latency per batch (ms)")},
        {"compression", QStringLiteral("Compression vs FP32")}, {"eval_samples", QStringLiteral("Evaluation samples")},
        {"perplexity", QStringLiteral("Perplexity")}};
    auto it = titles.find(name);
    return it != titles.end() ? it->second : QString::fromStdString(name);
}

QString formatMetricValue(const std::string& name, double v)
{
    if (name == "top1" || name == "top1_agreement" || name == "fp32_top1")
        return formatPercent(v, 2);
    if (name.ends_with("size_bits"))
        return formatBytes(uint64_t(std::llround(std::abs(v) / 8)));
    if (name == "compression")
        return QStringLiteral("%1\u00D7").arg(v, 0, 'f', 2);
    return formatNumber(v, 4);
}

} // namespace qs::ui
