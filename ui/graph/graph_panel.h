// The graph view with its tool bar: colour-by metric, search, blocks, minimap, zoom, fit,
// layout direction.
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

signals:
    void directionChanged(qs::ui::GraphDirection direction);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void updateMetricItems();
    void updateInfo();

    ModelDocument* doc_;
    GraphView* view_;
    QComboBox* colorBy_;
    QLabel* info_;
    QString infoText_; // shown elided to the room the tools leave
    QLineEdit* search_;
    QString searchStatus_;
    QAction* minimapAction_;
    QLabel* zoomLabel_;
    QToolButton* directionButton_;
    GraphDirection direction_ = GraphDirection::LeftToRight;
};

} // namespace qs::ui
