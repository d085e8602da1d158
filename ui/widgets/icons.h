// The studio's icons, drawn as vector line art at any device pixel ratio, so they
// need no image plugin and stay crisp on HiDPI screens.
#pragma once

#include <QIcon>

namespace qs::ui {

enum class IconId {
    App, Open, Demo, Calibrate, Cancel, Fit, ZoomIn, ZoomOut, Save, Copy, Search, LogScale, Sort, Direction, Data,
};

QIcon icon(IconId id);

} // namespace qs::ui
