// The colour key in a strip under the graph view: what the colours of the layer boxes mean.
#pragma once

#include "ui/widgets/color_scale.h"

#include <QWidget>

namespace qs::ui {

class GraphLegend : public QWidget {
    Q_OBJECT
public:
    explicit GraphLegend(QWidget* parent = nullptr);
    // `unavailable` explains why nothing is coloured (e.g. "run calibration first").
    void setScale(const QString& title, const ColorScale& scale, const QString& loText, const QString& hiText,
                  const QString& unavailable = {});
    // A line under the scale (e.g. the precision boundaries' total cost); empty: none.
    void setNote(const QString& note);
    QString note() const { return note_; }
    QSize sizeHint() const override;

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    static constexpr int barWidth = 150;
    QString title_, lo_, hi_, unavailable_, note_;
    ColorScale scale_;
};

} // namespace qs::ui
