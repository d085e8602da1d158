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
    const QFontMetrics fm(font());
    QFont bold = font();
    bold.setBold(true); // the title is drawn bold
    const int w = std::max({QFontMetrics(bold).horizontalAdvance(title_) + 24, fm.horizontalAdvance(unavailable_) + 24,
                            fm.horizontalAdvance(note_) + 52, 190});
    const int noteHeight = note_.isEmpty() ? 0 : fm.height() + 6;
    return {w, (unavailable_.isEmpty() ? fm.height() * 2 + 30 : fm.height() * 2 + 18) + noteHeight};
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
    const QRectF r = QRectF(rect()).adjusted(0.5, 0.5, -0.5, -0.5);
    p.setPen(QPen(QColor(0xd5, 0xd9, 0xdf)));
    p.setBrush(QColor(255, 255, 255, 235));
    p.drawRoundedRect(r, 6, 6);
    const QFontMetrics fm(font());
    QFont bold = font();
    bold.setBold(true);
    p.setFont(bold);
    p.setPen(theme::text);
    p.drawText(QRectF(10, 6, r.width() - 20, fm.height()), Qt::AlignLeft | Qt::AlignVCenter, title_);
    p.setFont(font());
    if (!note_.isEmpty()) { // the last line, with a swatch of the boundary colour
        const QRectF line(10, r.height() - fm.height() - 7, r.width() - 20, fm.height());
        p.setPen(QPen(edgeMarkColor(), 3, Qt::SolidLine, Qt::RoundCap));
        p.drawLine(QPointF(line.left(), line.center().y()), QPointF(line.left() + 16, line.center().y()));
        p.setPen(theme::text);
        p.drawText(line.adjusted(22, 0, 0, 0), Qt::AlignLeft | Qt::AlignVCenter, note_);
    }
    if (!unavailable_.isEmpty()) {
        p.setPen(theme::mutedText);
        p.drawText(QRectF(10, 8 + fm.height(), r.width() - 20, fm.height()), Qt::AlignLeft | Qt::AlignVCenter,
                   unavailable_);
        return;
    }
    const QRectF bar(10, 10 + fm.height(), r.width() - 20, 10);
    p.setPen(QPen(QColor(0, 0, 0, 40)));
    p.setBrush(scale_.gradient(bar.topLeft(), bar.topRight()));
    p.drawRoundedRect(bar, 2, 2);
    p.setPen(theme::mutedText);
    const QRectF labels(10, bar.bottom() + 3, r.width() - 20, fm.height());
    p.drawText(labels, Qt::AlignLeft | Qt::AlignVCenter, lo_);
    p.drawText(labels, Qt::AlignRight | Qt::AlignVCenter, hi_);
    if (scale_.isLog() || scale_.lowIsBad())
        p.drawText(labels, Qt::AlignHCenter | Qt::AlignVCenter,
                   scale_.lowIsBad() ? QStringLiteral("low is worse") : QStringLiteral("log scale"));
}

} // namespace qs::ui
