// What "Train (QAT)..." runs with, besides the current bit configuration (the bits
// trained for): training and held-out data, steps, learning rates, end-to-end or block
// by block, batch, how often to evaluate and checkpoint. The CLI twin is
// `quantstudio-cli qat --db`.
#pragma once

#include <QDialog>
#include <QString>

class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QSpinBox;

namespace qs::ui {

struct QatRequest {
    QString trainData;  // dataset spec (IDX/NPY path, images:DIR, random:N)
    QString evalData;   // held-out; the same spec as trainData holds out its last evalLimit samples
    QString preprocess; // images:DIR / imagelist:FILE data: the pipeline, for both
    int steps = 200;
    int batch = 32;
    double lr = 1e-4;
    double scaleLr = 1e-3;
    bool blockwise = false;
    int evalEvery = 20;      // steps between held-out evaluations
    int evalLimit = 200;     // held-out samples
    int checkpointEvery = 0; // steps between checkpoints (0: at the end only)
};

class QatDialog : public QDialog {
    Q_OBJECT
public:
    // `bits` describes the configuration trained for (shown, not edited here).
    QatDialog(const QatRequest& initial, const QString& bits, QWidget* parent = nullptr);

    QatRequest request() const;
    QSpinBox* steps() const { return steps_; }
    QComboBox* mode() const { return mode_; }

private:
    QLineEdit *trainData_, *evalData_;
    QString preprocess_;
    QSpinBox *steps_, *batch_, *evalEvery_, *evalLimit_, *checkpointEvery_;
    QDoubleSpinBox *lr_, *scaleLr_;
    QComboBox* mode_;
};

} // namespace qs::ui
