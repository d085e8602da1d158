#include "ui/graph/graph_legend.h"

#include "ui/graph/graph_items.h"
#include "ui/widgets/theme.h"

#include <QPainter>

namespace qs::ui {

GraphLegend::GraphLegend(QWidget* parent) : QWidget(parent)
{
    setAttribute(Qt::WA_TransparentForMouseEvents);
    setObjectName(QStringLiteral("graphLegend"));
}

void GraphLegend::setScale(const QString& title, const ColorScale& scale, const QString& loText,
                           const QString& hiText, const QString& unavailable)
{
    title_ = title;
    scale_ = scale;
    lo_ = loText;
    hi_ = hiText;
    unavailable_ = unavailable;
    resize(sizeHint());
    update();
}

QSize GraphLegend::sizeHint() const
{
    // One line under the canvas: title, then the bar with its ends (or why there is none),
    // then the note.
    const QFontMetrics fm(font());
    QFont bold = font();
    bold.setBold(true); // the title is drawn bold
    int w = QFontMetrics(bold).horizontalAdvance(title_) + 24;
    w += unavailable_.isEmpty() ? fm.horizontalAdvance(lo_) + fm.horizontalAdvance(hi_) + barWidth + 24
                                : fm.horizontalAdvance(unavailable_) + 12;
    if (!note_.isEmpty())
        w += fm.horizontalAdvance(note_) + 40;
    return {w, fm.height() + 10};
}

void GraphLegend::setNote(const QString& note)
{
    if (note_ == note)
        return;
    note_ = note;
    resize(sizeHint());
    update();
}

void GraphLegend::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    p.fillRect(rect(), QColor(0xf6, 0xf7, 0xf9));
    p.setPen(QColor(0xe1, 0xe4, 0xe8));
    p.drawLine(0, 0, width(), 0);
    const QFontMetrics fm(font());
    const double mid = height() / 2.0 + 0.5;
    const QRectF line(10, mid - fm.height() / 2.0, width() - 20, fm.height());
    QFont bold = font();
    bold.setBold(true);
    p.setFont(bold);
    p.setPen(theme::text);
    p.drawText(line, Qt::AlignLeft | Qt::AlignVCenter, title_);
    double x = line.left() + QFontMetrics(bold).horizontalAdvance(title_) + 14;
    p.setFont(font());
    if (!unavailable_.isEmpty()) {
        p.setPen(theme::mutedText);
        p.drawText(QRectF(x, line.top(), line.right() - x, line.height()), Qt::AlignLeft | Qt::AlignVCenter,
                   fm.elidedText(unavailable_, Qt::ElideRight, int(line.right() - x)));
        x += fm.horizontalAdvance(unavailable_) + 12;
    } else {
        p.setPen(theme::mutedText);
        p.drawText(QRectF(x, line.top(), 400, line.height()), Qt::AlignLeft | Qt::AlignVCenter, lo_);
        x += fm.horizontalAdvance(lo_) + 6;
        const QRectF bar(x, mid - 5, barWidth, 10);
        p.setPen(QPen(QColor(0, 0, 0, 40)));
        p.setBrush(scale_.gradient(bar.topLeft(), bar.topRight()));
        p.drawRoundedRect(bar, 2, 2);
        if (scale_.isLog() || scale_.lowIsBad()) {
            QFont small = font();
            small.setPointSizeF(font().pointSizeF() * 0.8);
            p.setFont(small);
            p.setPen(ColorScale::textColorOn(scale_.color((scale_.lo() + scale_.hi()) / 2)));
            p.drawText(bar, Qt::AlignCenter, scale_.lowIsBad() ? QStringLiteral("low is worse") : QStringLiteral("log scale"));
            p.setFont(font());
        }
        x = bar.right() + 6;
        p.setPen(theme::mutedText);
        p.drawText(QRectF(x, line.top(), 400, line.height()), Qt::AlignLeft | Qt::AlignVCenter, hi_);
        x += fm.horizontalAdvance(hi_) + 12;
    }
    if (!note_.isEmpty()) { // with a swatch of the boundary colour
        x += 8;
        p.setPen(QPen(edgeMarkColor(), 3, Qt::SolidLine, Qt::RoundCap));
        p.drawLine(QPointF(x, mid), QPointF(x + 16, mid));
        p.setPen(theme::text);
        p.drawText(QRectF(x + 22, line.top(), std::max(0.0, line.right() - x - 22), line.height()),
                   Qt::AlignLeft | Qt::AlignVCenter, note_);
    }
}

} // namespace qs::ui
