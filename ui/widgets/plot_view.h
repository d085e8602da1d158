// A titled QCustomPlot with the actions every studio plot has: save as PNG or PDF,
// copy as image, copy the data as CSV, and an empty-state message.
#pragma once

#include <QWidget>

#include <functional>

class QCustomPlot;
class QHBoxLayout;
class QLabel;
class QToolButton;

namespace qs::ui {

class ElidedLabel;

class PlotView : public QWidget {
    Q_OBJECT
public:
    explicit PlotView(const QString& title, QWidget* parent = nullptr);

    QCustomPlot* plot() const { return plot_; }
    // Extra controls go between the title and the save/copy buttons.
    void addTool(QWidget* w);
    QToolButton* addToggle(const QIcon& icon, const QString& tip);
    void setTitle(const QString& title);
    void setSubtitle(const QString& text);
    void setFileStem(const QString& stem) { stem_ = stem; } // suggested file name
    void setCsvProvider(std::function<QString()> csv) { csv_ = std::move(csv); }
    // Shows `text` over an empty plot; an empty text shows the plot.
    void setMessage(const QString& text);
    bool hasMessage() const;

    bool savePng(const QString& path) const;
    bool savePdf(const QString& path) const;
    void copyImage() const;
    QString csv() const { return csv_ ? csv_() : QString(); }

    // The look shared by every plot: light grid, no box, readable ticks.
    static void styleAxes(QCustomPlot* plot);

public slots:
    void saveAs();

private:
    void showMenu(const QPoint& pos);

    QLabel* title_;
    ElidedLabel* subtitle_;
    QHBoxLayout* tools_;
    QCustomPlot* plot_;
    QLabel* message_;
    QString stem_ = QStringLiteral("plot");
    std::function<QString()> csv_;
};

} // namespace qs::ui
