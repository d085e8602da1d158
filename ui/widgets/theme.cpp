#include "ui/widgets/theme.h"

#include <QApplication>
#include <QPalette>
#include <QStyleFactory>

namespace qs::ui::theme {

QColor seriesColor(int i)
{
    static const QColor colors[] = {QColor(0xdc, 0x26, 0x26), QColor(0x16, 0xa3, 0x4a), QColor(0x93, 0x33, 0xea),
                                    QColor(0xea, 0x58, 0x0c), QColor(0x08, 0x91, 0xb2), QColor(0xdb, 0x27, 0x77),
                                    QColor(0x65, 0xa3, 0x0d), QColor(0x4f, 0x46, 0xe5)};
    return colors[std::size_t(i) % (sizeof colors / sizeof colors[0])];
}

QFont graphTitleFont()
{
    QFont f = QApplication::font();
    f.setPointSizeF(9);
    f.setBold(true);
    return f;
}

QFont graphTextFont()
{
    QFont f = QApplication::font();
    f.setPointSizeF(7.5);
    return f;
}

QFont monoFont()
{
    QFont f(QStringLiteral("DejaVu Sans Mono"));
    f.setStyleHint(QFont::Monospace);
    f.setPointSizeF(QApplication::font().pointSizeF() * 0.92);
    return f;
}

void apply(QApplication& app)
{
    app.setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
    QPalette p;
    const QColor window(0xf3, 0xf4, 0xf6), base(Qt::white);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, QColor(0xf8, 0xf9, 0xfb));
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, QColor(0xfa, 0xfa, 0xfb));
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::Highlight, QColor(0xd3, 0xe3, 0xfd));
    p.setColor(QPalette::HighlightedText, QColor(0x0b, 0x1f, 0x44));
    p.setColor(QPalette::ToolTipBase, QColor(0xff, 0xff, 0xff));
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, QColor(0x9a, 0xa0, 0xa8));
    p.setColor(QPalette::Link, accent);
    p.setColor(QPalette::Mid, QColor(0xd5, 0xd9, 0xdf));
    p.setColor(QPalette::Dark, QColor(0xb8, 0xbe, 0xc7));
    p.setColor(QPalette::Disabled, QPalette::Text, QColor(0xa0, 0xa6, 0xae));
    p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(0xa0, 0xa6, 0xae));
    p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(0xa0, 0xa6, 0xae));
    app.setPalette(p);
    app.setStyleSheet(QStringLiteral(R"(
        QMainWindow::separator { background: #e1e4e8; width: 1px; height: 1px; }
        QDockWidget { titlebar-close-icon: none; font-weight: 600; }
        QDockWidget::title { background: #eceef1; padding: 5px 8px; border-bottom: 1px solid #dde0e4; }
        QToolBar { border: none; spacing: 4px; padding: 3px 6px; background: #f3f4f6; }
        QToolBar#mainToolBar { border-bottom: 1px solid #dde0e4; }
        QToolButton { padding: 3px 6px; border-radius: 4px; }
        QToolButton:hover { background: #e5e9f0; }
        QToolButton:checked { background: #dbe6fb; }
        QStatusBar { background: #eceef1; border-top: 1px solid #dde0e4; }
        QStatusBar::item { border: none; }
        QLabel[role="muted"] { color: #6b7280; }
        QLabel[role="heading"] { font-size: 13pt; font-weight: 600; }
        QLabel[role="section"] { color: #374151; font-weight: 600; }
        QLabel[role="badge"] { background: #e0e7ff; color: #3730a3; border-radius: 3px; padding: 1px 6px; font-weight: 600; }
        QTableView { border: none; gridline-color: #eef0f3; selection-background-color: #d3e3fd; }
        QHeaderView::section { background: #f6f7f9; border: none; border-bottom: 1px solid #dde0e4;
                               border-right: 1px solid #eceef1; padding: 4px 6px; color: #374151; font-weight: 600; }
        QLineEdit, QComboBox { padding: 3px 6px; border: 1px solid #cfd4db; border-radius: 4px; background: white; }
        QLineEdit:focus, QComboBox:focus { border-color: #2563eb; }
        QProgressBar { border: 1px solid #cfd4db; border-radius: 4px; background: white; height: 14px;
                       text-align: center; font-size: 8pt; }
        QProgressBar::chunk { background: #3b82f6; border-radius: 3px; }
    )"));
}

} // namespace qs::ui::theme
