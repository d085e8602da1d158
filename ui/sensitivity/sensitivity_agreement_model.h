// The metric comparison as a table: one row per layer, per metric its value with the
// 95% bootstrap interval and its rank (1 = most sensitive by that metric), sortable
// through SensitivityAgreementProxy; plus the verdict in words of which metrics agree.
#pragma once

#include "analysis/sensitivity_metrics.h"

#include <QAbstractTableModel>
#include <QSortFilterProxyModel>

#include <memory>
#include <vector>

namespace qs::ui {

// A cell: "0.0312 [0.024, 0.04]", "19.94 [19.75, 20.07]": 3 significant digits, more when the
// interval is narrow against the value (up to 6).
QString agreementCellText(double value, double lo, double hi);
// "One-shot KL", "Local SQNR dB", ... for a MetricColumn::name.
QString metricTitle(const std::string& name);
// Per layer, 1 for the most sensitive by `m` (highest score); 0 where the value is unavailable (NaN).
std::vector<int> metricRanks(const MetricColumn& m);
// Whether metric `i` has a value for every layer, so its Spearman correlations mean something.
bool metricComplete(const MetricColumn& m);
// One line: which metrics agree (Spearman rho >= `agree`) and which rank the layers differently.
QString agreementVerdict(const SensitivityAgreement& r, double agree = 0.7);

class SensitivityAgreementModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Role {
        SortRole = Qt::UserRole, // double: graph order for the layer column, value or rank otherwise; NaN: none
        ValueRole,               // double, the metric's value in its own unit
        LoRole,                  // double, the interval's lower end
        HiRole,                  // double, the interval's upper end
        RankRole,                // int, 0 when unavailable
        LayerRowRole,            // int, the row in ModelData::layers (-1 when the model has no such layer)
        AvailableRole,           // bool
    };

    explicit SensitivityAgreementModel(QObject* parent = nullptr);

    // `layerRows[i]`: the document row of r->layers[i].
    void setResult(std::shared_ptr<const SensitivityAgreement> r, std::vector<int> layerRows);
    void clear();
    const SensitivityAgreement* result() const { return result_.get(); }

    int metricCount() const { return result_ ? int(result_->metrics.size()) : 0; }
    static int valueColumn(int metric) { return 1 + 2 * metric; }
    static int rankColumn(int metric) { return 2 + 2 * metric; }
    int rowOfLayer(int layerRow) const; // the model row showing the document's layer, -1 for none

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::shared_ptr<const SensitivityAgreement> result_;
    std::vector<int> layerRows_;
    std::vector<std::vector<int>> ranks_; // [metric][layer]
};

// Sorts by SortRole as numbers, unavailable cells last in either order.
class SensitivityAgreementProxy : public QSortFilterProxyModel {
    Q_OBJECT
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;

protected:
    bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;
};

} // namespace qs::ui
