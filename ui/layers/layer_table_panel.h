// The layer table with its filter bar: name filter, op filter, row count, and a
// header menu to show or hide columns.
#pragma once

#include <QWidget>

#include <functional>
#include <utility>
#include <vector>

class QComboBox;
class QLabel;
class QLineEdit;
class QTableView;

namespace qs::ui {

class LayerFilterProxy;
class LayerTableModel;
class ModelDocument;
class Studio;
class QuantConfigDocument;
class QuantFieldDelegate;

class LayerTablePanel : public QWidget {
    Q_OBJECT
public:
    // Attaches its selection to the studio's LayerSelection and edits its configuration.
    explicit LayerTablePanel(Studio& studio, QWidget* parent = nullptr);

    LayerTableModel* model() const { return model_; }
    LayerFilterProxy* proxy() const { return proxy_; }
    QTableView* view() const { return view_; }
    QLineEdit* nameFilter() const { return nameEdit_; }
    QComboBox* opFilter() const { return opCombo_; }

    // Makes the configuration columns editable (delegates, a context menu for the selected rows).
    void setConfigDocument(QuantConfigDocument* config);
    QuantFieldDelegate* fieldDelegate() const { return fieldDelegate_; }
    // A widget under the table (the configuration's size and predicted error).
    void addFooter(QWidget* footer);
    // An entry of the row menu when one layer is selected (e.g. "Show divergent samples").
    void addRowAction(const QString& text, std::function<void(int layerRow)> action)
    {
        rowActions_.emplace_back(text, std::move(action));
    }
    // Rows of ModelData::layers selected in the table, ascending.
    QList<int> selectedLayerRows() const;

    QByteArray saveHeaderState() const;
    void restoreHeaderState(const QByteArray& state);
    void clearFilters();
    // The rows shown (filtered, in view order) and visible columns as tab-separated
    // text for a spreadsheet: raw numbers where a column has them, full layer names.
    QString toTsv() const;
    void copyToClipboard() const;

private:
    void rebuildOps();
    void updateCount();
    void showHeaderMenu(const QPoint& pos);
    void fitColumns();
    void showRowMenu(const QPoint& pos);

    ModelDocument* doc_;
    LayerTableModel* model_;
    LayerFilterProxy* proxy_;
    QTableView* view_;
    QLineEdit* nameEdit_;
    QComboBox* opCombo_;
    QLabel* count_;
    QuantFieldDelegate* fieldDelegate_ = nullptr;
    std::vector<std::pair<QString, std::function<void(int)>>> rowActions_;
};

} // namespace qs::ui
