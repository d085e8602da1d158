// Exporting a stored quantization run: QDQ ONNX, the AIMET encodings and the HTML
// report (the CLI's `export --format qdq`, `encodings` and `report`) as one job, then the result checked:
// the ONNX file imported again (size, nodes, Q/DQ pairs), the report's path and
// the artifact rows the store now holds for the run.
#pragma once

#include "export/parity.h"
#include "jobs/progress.h"
#include "store/records.h"

#include <QDialog>

#include <memory>
#include <vector>

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QStandardItemModel;
class QTableView;

namespace qs::ui {

class JobRunner;

struct ExportCheck {
    int64_t runId = 0;
    QString onnxPath, reportPath, encodingsPath; // the AIMET encodings of the same replay
    int64_t onnxBytes = 0;
    int nodes = 0, quantizeNodes = 0, dequantizeNodes = 0; // of the re-imported file
    int checkedLayers = 0;                                  // re-derived layers that matched the store
    int64_t trueSizeBits = 0, storedSizeBits = 0;
    std::vector<ArtifactRecord> artifacts;                  // the run's, read back from the store
};

// Worker side: exports and checks. Throws an Error naming the run or file at fault.
ExportCheck exportAndCheck(const QString& storePath, int64_t runId, const QString& onnxPath, Progress& progress,
    const CancelToken& cancel);

// Worker side of the parity check: the exported file imported again and run with real
// INT8 kernels against the run's re-derived (simulated) session, layer by layer, on the
// run's calibration data (`quantstudio-cli parity EXPORTED --run ID`).
ParityResult parityOfExport(const QString& storePath, int64_t runId, const QString& onnxPath,
    const ParityOptions& options, Progress& progress, const CancelToken& cancel);

class ExportDialog : public QDialog {
    Q_OBJECT
public:
    // `runs`: the choices (finished quantization runs are listed), `runId` preselected.
    ExportDialog(JobRunner* jobs, const QString& storePath, const std::vector<RunRecord>& runs, int64_t runId,
        QWidget* parent = nullptr);

    QComboBox* runCombo() const { return run_; }
    QLineEdit* pathEdit() const { return path_; }
    QPushButton* exportButton() const { return export_; }
    QLabel* resultLabel() const { return result_; }
    QStandardItemModel* artifactsModel() const { return artifacts_; }
    const ExportCheck* lastCheck() const { return check_.get(); }
    QPushButton* parityButton() const { return parity_; }
    QLabel* parityLabel() const { return parityResult_; }
    // One row per layer: layer, op, kernel, SQNR, max difference in steps, status.
    QStandardItemModel* parityModel() const { return parityRows_; }
    const ParityResult* lastParity() const { return parityCheck_.get(); }
    qint64 selectedRun() const;
    // The default file for a run: <store folder>/exports/run-<id>.onnx.
    QString defaultPath(qint64 runId) const;

public slots:
    int startExport(); // job id
    int startParity(); // job id; needs an export of the selected run first

signals:
    void exported(qint64 runId);
    void parityChecked(qint64 runId);

private:
    void showCheck(std::shared_ptr<const ExportCheck> check);
    void showParity(std::shared_ptr<const ParityResult> parity);

    JobRunner* jobs_;
    QString storePath_;
    QComboBox* run_;
    QLineEdit* path_;
    QPushButton* export_;
    QLabel* result_;
    QStandardItemModel* artifacts_;
    QTableView* artifactsView_;
    std::shared_ptr<const ExportCheck> check_;
    QPushButton* parity_;
    QLabel* parityResult_;
    QStandardItemModel* parityRows_;
    QTableView* parityView_;
    std::shared_ptr<const ParityResult> parityCheck_;
    bool pathEdited_ = false;
};

} // namespace qs::ui
