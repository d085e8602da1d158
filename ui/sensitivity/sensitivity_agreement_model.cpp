#include "ui/sensitivity/sensitivity_agreement_model.h"

#include "ui/document/graph_layout.h"
#include "ui/widgets/format.h"

#include <QColor>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs::ui {
namespace {

struct MetricNames {
    const char* name;   // MetricColumn::name
    const char* title;  // a column header
    const char* phrase; // inside a sentence
};
constexpr MetricNames kMetricNames[] = {
    {"oneshot_kl", "One-shot KL", "one-shot KL"},
    {"local_sqnr_db", "Local SQNR dB", "local SQNR"},
    {"hessian_score", "Hessian", "Hessian"},
    {"weight_kurtosis", "Kurtosis", "weight kurtosis"},
};

const MetricNames* namesOf(const std::string& name)
{
    for (const auto& n : kMetricNames)
        if (name == n.name)
            return &n;
    return nullptr;
}

QString metricPhrase(const std::string& name)
{
    const MetricNames* n = namesOf(name);
    return n ? QString::fromLatin1(n->phrase) : QString::fromStdString(name);
}

QString capitalized(QString s)
{
    if (!s.isEmpty())
        s[0] = s[0].toUpper();
    return s;
}

// "a", "a and b", "a, b and c"
QString joined(const QStringList& parts)
{
    if (parts.size() <= 1)
        return parts.value(0);
    return QStringList(parts.mid(0, parts.size() - 1)).join(QStringLiteral(", ")) + QStringLiteral(" and ") + parts.back();
}

QString rho(double v)
{
    return QString::number(v, 'f', 2).replace(QLatin1Char('-'), QChar(0x2212));
}

} // namespace

QString agreementCellText(double value, double lo, double hi)
{
    // Digits enough to resolve the interval's width twice over, so its ends read apart from the value.
    int digits = 3;
    const double width = hi - lo, magnitude = std::max({std::abs(value), std::abs(lo), std::abs(hi)});
    if (std::isfinite(width) && std::isfinite(magnitude) && width > 0)
        digits = std::clamp(int(std::ceil(std::log10(magnitude / width))) + 2, 3, 6);
    return QStringLiteral("%1 [%2, %3]").arg(formatNumber(value, digits), formatNumber(lo, digits), formatNumber(hi, digits));
}

QString metricTitle(const std::string& name)
{
    const MetricNames* n = namesOf(name);
    return n ? QString::fromLatin1(n->title) : QString::fromStdString(name);
}

std::vector<int> metricRanks(const MetricColumn& m)
{
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < m.value.size(); ++i)
        if (!std::isnan(m.value[i]))
            order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return m.score(a) > m.score(b); });
    std::vector<int> ranks(m.value.size(), 0);
    for (std::size_t k = 0; k < order.size(); ++k) // ties share the better rank
        ranks[order[k]] = k > 0 && m.score(order[k]) == m.score(order[k - 1]) ? ranks[order[k - 1]] : int(k + 1);
    return ranks;
}

bool metricComplete(const MetricColumn& m)
{
    return !m.value.empty() && std::none_of(m.value.begin(), m.value.end(), [](double v) { return std::isnan(v); });
}

QString agreementVerdict(const SensitivityAgreement& r, double agree)
{
    std::vector<int> usable;
    QStringList missing;
    for (std::size_t i = 0; i < r.metrics.size(); ++i) {
        if (metricComplete(r.metrics[i]))
            usable.push_back(int(i));
        else
            missing << metricPhrase(r.metrics[i].name);
    }
    const QString missingNote =
        missing.isEmpty() ? QString()
                          : QStringLiteral(" (%1 unavailable for some layers, left out)").arg(joined(missing));
    if (usable.size() < 2)
        return QStringLiteral("Fewer than two metrics cover every layer: nothing to compare") + missingNote + QLatin1Char('.');
    // Groups of metrics linked by a pair that agrees (union-find over the pairs).
    std::vector<int> group(r.metrics.size());
    std::iota(group.begin(), group.end(), 0);
    auto find = [&](int i) {
        while (group[std::size_t(i)] != i)
            i = group[std::size_t(i)];
        return i;
    };
    double best = -2;
    std::pair<int, int> bestPair{usable[0], usable[1]};
    for (std::size_t a = 0; a < usable.size(); ++a)
        for (std::size_t b = a + 1; b < usable.size(); ++b) {
            const double v = r.spearman[std::size_t(usable[a])][std::size_t(usable[b])];
            if (v > best) {
                best = v;
                bestPair = {usable[a], usable[b]};
            }
            if (v >= agree)
                group[std::size_t(find(usable[b]))] = find(usable[a]);
        }
    if (best < agree)
        return QStringLiteral("No two metrics agree: the closest, %1 and %2, have \u03C1 = %3; the ranking depends on the metric")
                   .arg(metricPhrase(r.metrics[std::size_t(bestPair.first)].name),
                        metricPhrase(r.metrics[std::size_t(bestPair.second)].name), rho(best)) +
               missingNote + QLatin1Char('.');
    QStringList sentences, alone;
    for (int root : usable) {
        if (find(root) != root)
            continue;
        std::vector<int> members;
        for (int i : usable)
            if (find(i) == root)
                members.push_back(i);
        QStringList names;
        for (int i : members)
            names << metricPhrase(r.metrics[std::size_t(i)].name);
        if (members.size() == 1) {
            alone << names.front();
            continue;
        }
        double lowest = 2;
        for (std::size_t a = 0; a < members.size(); ++a)
            for (std::size_t b = a + 1; b < members.size(); ++b)
                lowest = std::min(lowest, r.spearman[std::size_t(members[a])][std::size_t(members[b])]);
        const bool all = members.size() == usable.size();
        sentences << (all ? QStringLiteral("All %1 metrics agree on the ranking (\u03C1 \u2265 %2)").arg(members.size()).arg(rho(lowest))
                          : members.size() == 2
                              ? QStringLiteral("%1 agree (\u03C1 = %2)").arg(capitalized(joined(names)), rho(lowest))
                              : QStringLiteral("%1 agree (\u03C1 \u2265 %2)").arg(capitalized(joined(names)), rho(lowest)));
    }
    QString out = sentences.join(QStringLiteral("; "));
    if (!alone.isEmpty())
        out += QStringLiteral("; %1 %2 the layers differently").arg(joined(alone), alone.size() == 1 ? QStringLiteral("ranks")
                                                                                                    : QStringLiteral("rank"));
    return out + missingNote + QLatin1Char('.');
}

SensitivityAgreementModel::SensitivityAgreementModel(QObject* parent) : QAbstractTableModel(parent) {}

void SensitivityAgreementModel::setResult(std::shared_ptr<const SensitivityAgreement> r, std::vector<int> layerRows)
{
    beginResetModel();
    result_ = std::move(r);
    layerRows_ = std::move(layerRows);
    ranks_.clear();
    if (result_)
        for (const auto& m : result_->metrics)
            ranks_.push_back(metricRanks(m));
    endResetModel();
}

void SensitivityAgreementModel::clear()
{
    setResult(nullptr, {});
}

int SensitivityAgreementModel::rowOfLayer(int layerRow) const
{
    const auto it = std::find(layerRows_.begin(), layerRows_.end(), layerRow);
    return it == layerRows_.end() || layerRow < 0 ? -1 : int(it - layerRows_.begin());
}

int SensitivityAgreementModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() || !result_ ? 0 : int(result_->layers.size());
}

int SensitivityAgreementModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : 1 + 2 * metricCount();
}

QVariant SensitivityAgreementModel::data(const QModelIndex& index, int role) const
{
    if (!result_ || !index.isValid() || index.row() >= rowCount())
        return {};
    const std::size_t li = std::size_t(index.row());
    if (role == LayerRowRole)
        return li < layerRows_.size() ? layerRows_[li] : -1;
    if (index.column() == 0) {
        switch (role) {
        case Qt::DisplayRole: return shortLayerName(result_->layers[li], result_->ops[li]);
        case Qt::ToolTipRole: return QStringLiteral("%1 (%2)").arg(QString::fromStdString(result_->layers[li]),
                                                                   QString::fromStdString(result_->ops[li]));
        case SortRole: return double(li);
        default: return {};
        }
    }
    const int metric = (index.column() - 1) / 2;
    const bool isRank = (index.column() - 1) % 2 == 1;
    const MetricColumn& m = result_->metrics[std::size_t(metric)];
    const double v = m.value[li], lo = m.lo[li], hi = m.hi[li];
    const bool available = !std::isnan(v);
    const int rank = ranks_[std::size_t(metric)][li];
    switch (role) {
    case Qt::DisplayRole:
        if (isRank)
            return available ? QString::number(rank) : dash();
        if (!available)
            return QStringLiteral("not computable");
        if (lo == v && hi == v && m.name == "weight_kurtosis")
            return formatNumber(v, 3); // needs no data: no interval to show
        return agreementCellText(v, lo, hi);
    case Qt::ToolTipRole:
        if (!available)
            return QStringLiteral("%1 could not be computed for this layer (e.g. it has no weight to perturb)")
                .arg(metricTitle(m.name));
        return QStringLiteral("%1: %2\n95% bootstrap interval [%3, %4] over %5 resamples of %6 batches\nrank %7 of %8 "
                              "(1 = most sensitive)")
            .arg(metricTitle(m.name), formatNumber(v, 6), formatNumber(lo, 6), formatNumber(hi, 6))
            .arg(result_->bootstrap)
            .arg(result_->batches)
            .arg(rank)
            .arg(result_->layers.size()) +
               QStringLiteral("\n") + QString::fromStdString(m.summary);
    case Qt::TextAlignmentRole: return int(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ForegroundRole:
        if (!available)
            return QColor(0x8b, 0x95, 0xa5);
        return {};
    case SortRole:
        if (!available)
            return double(NAN);
        return isRank ? double(rank) : v;
    case ValueRole: return v;
    case LoRole: return lo;
    case HiRole: return hi;
    case RankRole: return rank;
    case AvailableRole: return available;
    default: return {};
    }
}

QVariant SensitivityAgreementModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= columnCount())
        return {};
    if (section == 0)
        return role == Qt::DisplayRole ? QVariant(QStringLiteral("Layer")) : QVariant();
    const MetricColumn& m = result_->metrics[std::size_t((section - 1) / 2)];
    const bool isRank = (section - 1) % 2 == 1;
    if (role == Qt::DisplayRole)
        return isRank ? QStringLiteral("#") : metricTitle(m.name);
    if (role == Qt::ToolTipRole)
        return isRank ? QStringLiteral("Rank by %1: 1 = the most sensitive layer").arg(metricTitle(m.name))
                      : QString::fromStdString(m.summary) + QStringLiteral("\nEach cell: value [95% bootstrap interval]");
    return {};
}

bool SensitivityAgreementProxy::lessThan(const QModelIndex& left, const QModelIndex& right) const
{
    const double a = left.data(SensitivityAgreementModel::SortRole).toDouble();
    const double b = right.data(SensitivityAgreementModel::SortRole).toDouble();
    const bool an = std::isnan(a), bn = std::isnan(b);
    if (an || bn) // unavailable last whichever way the column is sorted
        return an != bn && (sortOrder() == Qt::AscendingOrder ? bn : an);
    return a < b;
}

} // namespace qs::ui
