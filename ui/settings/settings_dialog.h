// Edit > Settings: the memory budget of the analyses' caches (util/memory_budget.h):
// the machine's default (a quarter of its memory, or QS_CACHE_BUDGET) or a size given
// here, saved in the settings and applied to what-if sessions and sample data loaded
// from then on.
#pragma once

#include <QDialog>

class QCheckBox;
class QDoubleSpinBox;
class QLabel;

namespace qs::ui {

class Studio;

class SettingsDialog : public QDialog {
    Q_OBJECT
public:
    explicit SettingsDialog(Studio& studio, QWidget* parent = nullptr);

    // Reads the saved settings into the controls (on every show).
    void load();
    // The budget the controls say, in bytes (0: the default).
    qint64 chosenBudget() const;
    QDoubleSpinBox* budgetBox() const { return budget_; }
    QCheckBox* defaultBox() const { return useDefault_; }

protected:
    void showEvent(QShowEvent* event) override;

private:
    void updateText();

    Studio& studio_;
    QCheckBox* useDefault_;
    QDoubleSpinBox* budget_;
    QLabel* text_;
};

} // namespace qs::ui
