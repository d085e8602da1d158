// The samples behind the numbers: the inputs a layer hurts most when it alone is
// quantized (most divergent, by output KL), or the inputs the whole quantized model
// gets wrong while FP32 is right (flipped), as a grid of image thumbnails captioned
// with KL and classes. Clicking a thumbnail traces that sample's error layer by layer
// (output SQNR along the graph, the worst layer marked); clicking a bar selects the
// layer everywhere. Every computation is a core job (analysis/samples.h).
#pragma once

#include "analysis/samples.h"
#include "ui/jobs/job_runner.h"

#include <QWidget>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

class QCPBars;
class QCPItemText;
class QComboBox;
class QLabel;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace qs {
struct Dataset;
}

namespace qs::ui {

class JobRunner;
class LayerSelection;
class ModelDocument;
class PlotView;
class QuantConfigDocument;
class Studio;

class SamplesPanel : public QWidget {
    Q_OBJECT
public:
    enum class Mode { Divergent, Flipped };
    enum Role { SampleIndexRole = Qt::UserRole + 1, KlRole, WrongRole };

    explicit SamplesPanel(Studio& studio, QWidget* parent = nullptr);

    // Starts the current mode's job with the controls' settings; returns its id (-1: none started).
    int run();
    // Switches to "most divergent" for the layer (row of ModelData::layers), selects it, runs.
    int showDivergent(int layerRow);
    // Traces one sample of the loaded data (after a list was shown); returns the job id.
    int trace(int64_t index);
    void cancel();
    bool isRunning() const;

    Mode mode() const;
    void setMode(Mode mode);
    // What run() hands to core, and on which samples (for tests and the CLI twin).
    SampleOptions options() const;
    int64_t top() const;
    std::string layerName() const; // the selected layer ("" when none)
    // Why the open data cannot be shown ("" when it can).
    QString disabledReason() const { return disabled_; }

    const std::vector<SampleDivergence>& divergent() const { return divergent_; }
    const std::vector<SampleDivergence>& flipped() const { return flipped_; }
    const std::optional<SampleTrace>& shownTrace() const { return trace_; }
    const std::shared_ptr<const Dataset>& data() const { return data_; }
    // "3", or the class's name when the model's metadata lists them (quantstudio.classes).
    QString className(int64_t c) const;

    QComboBox* modeCombo() const { return mode_; }
    QComboBox* quantizeCombo() const { return quantize_; }
    QSpinBox* bitsSpin() const { return bits_; }
    QSpinBox* topSpin() const { return top_; }
    QSpinBox* limitSpin() const { return limit_; }
    QPushButton* runButton() const { return run_; }
    QPushButton* cancelButton() const { return cancel_; }
    QProgressBar* progressBar() const { return progress_; }
    QLabel* statusLabel() const { return status_; }
    QListWidget* grid() const { return grid_; }
    PlotView* tracePanel() const { return tracePanel_; }
    QCPBars* traceBars() const { return bars_; }
    QCPBars* worstBar() const { return worst_; }
    QCPBars* selectedBar() const { return selectedBar_; }
    // The trace point under a widget position of the trace plot; -1 when none.
    int traceBarAt(const QPoint& pos) const;

    // What a bar draws for an SQNR (an error-free layer, +inf dB, is drawn at the top).
    static double drawnDb(double sqnrDb);

signals:
    void listShown();  // a divergent or flipped list arrived
    void traceShown(); // a trace arrived
    void jobEnded(qs::ui::JobOutcome outcome);

private:
    void updateControls();
    void updateLayerLabel();
    void modelChanged();
    void showList(const std::vector<QImage>& images);
    void showTrace(const SampleTrace& t);
    void markSelection();
    void clearTrace(const QString& message);
    QString caption(const SampleDivergence& d) const;
    QString traceCsv() const;
    int startJob(const QString& kind, const QString& title, bool trace, const std::function<void()>& before,
                 std::function<std::function<void()>(const std::shared_ptr<const Dataset>&, Progress&, const CancelToken&)>
                     work);

    Studio& studio_;
    ModelDocument* doc_;
    QuantConfigDocument* config_;
    LayerSelection* selection_;
    JobRunner* jobs_;

    QComboBox* mode_;
    QComboBox* quantize_;
    QSpinBox* bits_;
    QSpinBox* top_;
    QSpinBox* limit_;
    QLabel* layer_;
    QPushButton* run_;
    QPushButton* cancel_;
    QProgressBar* progress_;
    QLabel* status_;
    QListWidget* grid_;
    PlotView* tracePanel_;
    QCPBars* bars_ = nullptr;
    QCPBars* worst_ = nullptr;
    QCPBars* selectedBar_ = nullptr; // outline of the selected layer's bar
    QCPItemText* worstLabel_ = nullptr;

    std::vector<std::string> classes_; // the model's class names (classNames)
    QString disabled_;
    std::shared_ptr<const Dataset> data_; // the samples the shown list is of
    QString dataKey_;                     // spec and limit data_ was loaded with
    DataOptions dataOptions_;             // what the shown list's data was loaded with
    std::vector<SampleDivergence> divergent_;
    std::vector<SampleDivergence> flipped_;
    std::optional<SampleTrace> trace_;
    SampleOptions shownOptions_; // what the shown list was computed with (traces use it too)
    QString resultText_;         // the status line of the last finished list
    int job_ = -1;
    bool traceJob_ = false;
    int serial_ = 0; // bumped per job: results of a replaced one are dropped
};

} // namespace qs::ui
