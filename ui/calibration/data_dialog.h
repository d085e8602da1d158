// File › Calibration Data: chooses the data every job of the studio runs on (an image
// folder, an image list, an IDX/NPY file or random inputs) and, for images, the
// preprocessing pipeline (a preset, then its fields), previewing a few images before and
// after it with the preprocessed tensor's per-channel statistics, the label mapping and
// warnings when the statistics look wrong for the model (ui/calibration/data_preview.h).
// The preview is a JobRunner job; OK sets Studio::setData.
#pragma once

#include "ui/calibration/data_preview.h"

#include <QDialog>
#include <QPointer>

#include <memory>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTimer;

namespace qs::ui {

class JobRunner;
class Studio;

class CalibrationDataDialog : public QDialog {
    Q_OBJECT
public:
    enum class Kind { ImageFolder, ImageList, ArrayFile, Random };

    explicit CalibrationDataDialog(Studio& studio, QWidget* parent = nullptr);
    ~CalibrationDataDialog() override; // cancels its preview

    // The data as a spec ("images:/data/val", "random:64") and its preprocessing (images only).
    QString spec() const;
    QString preprocessText() const; // "" when the fields do not make a pipeline (see pipelineProblem)
    QString pipelineProblem() const { return pipelineProblem_; }
    void setSource(Kind kind, const QString& pathOrCount);
    // Chooses a preset and fills the fields from it.
    void setPreset(const QString& name);
    // Starts the preview now (else it starts shortly after an edit); the job id, -1 when none.
    int refresh();
    bool isPreviewing() const;
    const DataPreview* preview() const { return preview_.get(); }
    QString previewError() const { return error_; }

    QComboBox* kindCombo() const { return kind_; }
    QLineEdit* pathEdit() const { return path_; }
    QComboBox* presetCombo() const { return preset_; }
    QLineEdit* meanEdit() const { return mean_; }
    QLineEdit* stdEdit() const { return std_; }
    QLineEdit* scaleEdit() const { return scale_; }
    QTableWidget* statsTable() const { return stats_; }
    QTableWidget* labelTable() const { return labels_; }
    QLabel* warningLabel() const { return warning_; }
    QListWidget* thumbList() const { return thumbs_; }

    void accept() override; // sets the studio's data

signals:
    void previewShown(); // a preview (or its error) reached the dialog

private:
    void buildPipelineFields(QFormLayout* form);
    void fillFields(const Preprocess& p);
    void fieldsEdited();
    void kindChanged();
    void browse();
    void schedule();
    void showPreview(std::shared_ptr<const DataPreview> preview, const QString& error);
    void updatePipelineLabel();
    QString itemsFromFields(QString* problem) const;

    Studio& studio_;
    QPointer<JobRunner> jobs_; // the studio's; may go first when the window closes
    QComboBox *kind_, *preset_, *resize_, *interp_, *channels_, *layout_;
    QLineEdit *path_, *scale_, *mean_, *std_;
    QPushButton* browse_;
    QSpinBox *count_, *width_, *height_, *cropWidth_, *cropHeight_;
    QDoubleSpinBox* pad_;
    QCheckBox* fit_;
    QLabel *pipeline_, *status_, *warning_, *thumbsTitle_;
    QListWidget* thumbs_;
    QTableWidget *stats_, *labels_;
    QPushButton* ok_ = nullptr;
    QTimer* debounce_;
    QString presetName_; // the preset the fields started from ("" for none)
    QString pipelineProblem_;
    bool filling_ = false;
    int job_ = -1;
    int serial_ = 0;
    std::shared_ptr<const DataPreview> preview_;
    QString error_;
};

} // namespace qs::ui
