// How numbers, shapes and durations read in the studio: one place, so the table,
// the inspector and the status bar agree.
#pragma once

#include "graph/tensor.h"

#include <QString>
#include <QStringList>

#include <string>
#include <vector>

namespace qs::ui {

QString formatCount(int64_t n);          // 117,210
QString formatCompact(double n);         // 117.2k, 10.5M
QString formatNumber(double v, int significant = 4); // 3.842, 1.2e-05, inf as the infinity sign
QString formatPercent(double fraction, int decimals = 1); // 0.314 -> "31.4 %"
QString formatBytes(uint64_t bytes);     // 463.4 KiB
QString formatDuration(double seconds);  // "0.4 s", "12 s", "3 min 05 s"
QString formatShape(const Shape& s);     // [16,1,3,3], -1 as "?"
// "1 layer", "8 layers": the count with the noun agreeing.
inline QString countOf(int64_t n, const QString& one, const QString& many)
{
    return QString::number(n) + QLatin1Char(' ') + (n == 1 ? one : many);
}
// A stored metric's name in words with its unit: "latency_ms" -> "Latency per batch (ms)".
QString runMetricTitle(const std::string& name);
// A stored metric's value: accuracies in %, sizes in bytes, compression as "3.93×".
QString formatMetricValue(const std::string& name, double v);
inline QString dash() { return QStringLiteral("\u2014"); }
// Core's strings (names, notes, tags) as a QStringList, e.g. to join() for display.
QStringList toQStringList(const std::vector<std::string>& strings);

} // namespace qs::ui
