// The measured latency table (core/analysis/latency.h) as an item model: one row per
// quantizable layer, FP32 and INT8 milliseconds, the INT8 speed-up and what crossing
// into and out of INT8 costs. For views of the latency axis (tables, Pareto charts).
#pragma once

#include "store/records.h"

#include <QAbstractTableModel>

namespace qs::ui {

class LatencyTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Layer, Op, Fp32Ms, Int8Ms, Speedup, QuantizeMs, DequantizeMs, ColumnCount };
    enum Role { SortRole = Qt::UserRole }; // raw double (NaN where not measured), or QString

    explicit LatencyTableModel(QObject* parent = nullptr);

    void setProfile(const LatencyProfile& profile);
    const LatencyProfile& profile() const { return profile_; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    double raw(int row, int column) const; // NaN where not measured
    LatencyProfile profile_;
};

} // namespace qs::ui
