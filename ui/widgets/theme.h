// The studio's look in one place: palette, accent, graph colours and fonts.
#pragma once

#include <QColor>
#include <QFont>

class QApplication;

namespace qs::ui::theme {

inline const QColor accent(0x25, 0x63, 0xeb);
inline const QColor text(0x1f, 0x23, 0x2b);
inline const QColor mutedText(0x5f, 0x67, 0x73);
inline const QColor canvas(0xfa, 0xfb, 0xfc);
inline const QColor ioFill(0x33, 0x41, 0x55);
inline const QColor opFill(0xf1, 0xf3, 0xf6);
inline const QColor opBorder(0xc6, 0xcb, 0xd3);
inline const QColor layerBorder(0x8b, 0x95, 0xa5);
inline const QColor edge(0xa0, 0xa8, 0xb4);
inline const QColor good(0x16, 0xa3, 0x4a);
inline const QColor warn(0xd9, 0x77, 0x06);

// Colours of the calibrators' clipping ranges, in the order they are listed.
QColor seriesColor(int i);

QFont graphTitleFont();
QFont graphTextFont();
QFont monoFont();

// Fusion style, a light palette and a small style sheet for docks and tool bars.
void apply(QApplication& app);

} // namespace qs::ui::theme
