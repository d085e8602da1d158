// A one-line label that shortens its text with an ellipsis instead of widening its
// parent; the full text is its tooltip.
#pragma once

#include <QLabel>

namespace qs::ui {

class ElidedLabel : public QLabel {
    Q_OBJECT
public:
    explicit ElidedLabel(QWidget* parent = nullptr, Qt::TextElideMode mode = Qt::ElideMiddle);
    void setFullText(const QString& text);
    QString fullText() const { return full_; }
    QSize minimumSizeHint() const override;
    QSize sizeHint() const override;

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void updateElided();
    QString full_;
    Qt::TextElideMode mode_;
};

} // namespace qs::ui
