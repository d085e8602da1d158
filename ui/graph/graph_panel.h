// The graph view with its tool bar: colour-by metric, search, blocks, minimap, the
// optimizer overlay, zoom, fit, layout direction.
#pragma once

#include "ui/document/graph_layout.h"

#include <QWidget>

class QAction;
class QComboBox;
class QLabel;
class QLineEdit;
class QToolButton;

namespace qs::ui {

class GraphView;
class JobRunner;
class LayerSelection;
class ModelDocument;
class Studio;

class GraphPanel : public QWidget {
    Q_OBJECT
public:
    // Its direction is the studio's: a change lays the model out again.
    explicit GraphPanel(Studio& studio, QWidget* parent = nullptr);

    GraphView* view() const { return view_; }
    QComboBox* colorCombo() const { return colorBy_; }
    QLineEdit* searchField() const { return search_; }
    QLabel* infoLabel() const { return info_; } // the model's counts, or the search's "match n of m"
    QAction* minimapAction() const { return minimapAction_; }
    GraphDirection direction() const { return direction_; }
    void setDirection(GraphDirection d);
    // The optimizer overlay: what the runtime's graph passes do to each node (fused into
    // another, folded, removed, rewritten) as badges over the boxes, computed in a job.
    QToolButton* optimizerButton() const { return optimizerButton_; }
    void setOptimizerOverlay(bool on);

signals:
    void directionChanged(qs::ui::GraphDirection direction);
    void optimizerOverlayShown(int changedNodes); // the overlay's badges are on the view

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void updateMetricItems();
    void updateInfo();
    void clearOptimizerOverlay();

    ModelDocument* doc_;
    JobRunner* jobs_;
    GraphView* view_;
    QComboBox* colorBy_;
    QLabel* info_;
    QString infoText_; // shown elided to the room the tools leave
    QLineEdit* search_;
    QString searchStatus_;
    QAction* minimapAction_;
    QLabel* zoomLabel_;
    QToolButton* directionButton_;
    QToolButton* optimizerButton_;
    QString optimizerText_; // the overlay's summary in the info line ("" while off)
    int optimizerJob_ = -1; // the overlay's latest job
    GraphDirection direction_ = GraphDirection::LeftToRight;
};

} // namespace qs::ui
