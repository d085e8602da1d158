#include "ui/config/config_feature.h"

#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/main_window.h"
#include "ui/widgets/error_reporter.h"

#include "interop/precision.h"

#include <QAction>
#include <QFileDialog>
#include <QMenu>
#include <QSettings>
#include <QStatusBar>
#include <QUndoStack>

namespace qs::ui {

ConfigFeature* ConfigFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new ConfigFeature(&window);
    f->addEditActions(window, studio);
    f->addFileActions(window, studio);
    f->addPrecisionActions(window, studio);
    window.addFeature(f);
    return f;
}

void ConfigFeature::addEditActions(MainWindow& window, Studio& studio)
{
    QuantConfigDocument* config = studio.config();
    QMenu* edit = window.editMenu();
    QAction* undo = config->undoStack()->createUndoAction(this, tr("&Undo"));
    undo->setObjectName(QStringLiteral("undoAction"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = config->undoStack()->createRedoAction(this, tr("&Redo"));
    redo->setObjectName(QStringLiteral("redoAction"));
    // The platform's Redo keys plus both common ones, each once: a key listed twice
    // registers two shortcuts that Qt calls ambiguous, and then neither fires.
    QList<QKeySequence> redoKeys{QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z)};
    for (const QKeySequence& key : QKeySequence::keyBindings(QKeySequence::Redo) + QList{QKeySequence(Qt::CTRL | Qt::Key_Y)})
        if (!redoKeys.contains(key))
            redoKeys.append(key);
    redo->setShortcuts(redoKeys);
    QAction* first = edit->actions().value(0);
    edit->insertAction(first, undo);
    edit->insertAction(first, redo);
    auto* presets = new QMenu(tr("Bit-width &Preset"), edit);
    using Preset = QuantConfigDocument::Preset;
    for (Preset p : {Preset::All8, Preset::W4A8, Preset::KeepEnds8})
        connect(presets->addAction(QuantConfigDocument::presetName(p)), &QAction::triggered, config,
            [config, p] { config->applyPreset(p); });
    edit->insertMenu(first, presets);
    edit->insertSeparator(first);
}

void ConfigFeature::addFileActions(MainWindow& window, Studio& studio)
{
    QuantConfigDocument* config = studio.config();
    MainWindow* w = &window;
    Studio* s = &studio;
    auto* save = new QAction(tr("&Save Bit Configuration…"), this);
    save->setObjectName(QStringLiteral("saveConfigAction"));
    save->setToolTip(tr("The per-layer bits as JSON, for quantstudio-cli quantize --config"));
    connect(save, &QAction::triggered, this, [w, s, config] {
        const QString path = QFileDialog::getSaveFileName(w, tr("Save bit configuration"),
            QSettings().value(QStringLiteral("config/lastPath")).toString(), tr("Quantization configs (*.json)"));
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("config/lastPath"), path);
        if (!config->save(path))
            s->errors()->report(w, tr("Saving the configuration"), config->lastError());
    });
    auto* load = new QAction(tr("&Load Bit Configuration…"), this);
    load->setObjectName(QStringLiteral("loadConfigAction"));
    connect(load, &QAction::triggered, this, [w, s, config] {
        const QString path = QFileDialog::getOpenFileName(w, tr("Load bit configuration"),
            QSettings().value(QStringLiteral("config/lastPath")).toString(),
            tr("Quantization configs (*.json);;All files (*)"));
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("config/lastPath"), path);
        if (!config->load(path))
            s->errors()->report(w, tr("Loading the configuration"), config->lastError());
    });
    window.addFileActions({save, load});
}

void ConfigFeature::addPrecisionActions(MainWindow& window, Studio& studio)
{
    // One file-dialog filter per format; the chosen filter says how to read or write.
    struct Format {
        PrecisionFormat format;
        QString filter;
        bool exports;
    };
    const QList<Format> formats = {
        {PrecisionFormat::Ort, tr("ONNX Runtime TensorQuantOverrides (*.json)"), true},
        {PrecisionFormat::Trt, tr("TensorRT --layerPrecisions (*.txt)"), true},
        {PrecisionFormat::Rules, tr("Regex rules, pattern=type lines (*.txt *.rules)"), true},
        {PrecisionFormat::Aimet, tr("AIMET encodings 0.6.1 (*.encodings *.json)"), false},
        {PrecisionFormat::Aimet1, tr("AIMET encodings 1.0.0 (*.encodings *.json)"), false},
    };
    auto filters = [formats](bool exporting) {
        QStringList out;
        for (const auto& f : formats)
            if (f.exports || !exporting)
                out << f.filter;
        return out.join(QStringLiteral(";;"));
    };
    auto formatOf = [formats](const QString& filter) {
        for (const auto& f : formats)
            if (f.filter == filter)
                return f.format;
        return PrecisionFormat::Ort;
    };
    MainWindow* w = &window;
    Studio* s = &studio;
    QuantConfigDocument* config = studio.config();
    auto reportNotes = [w](const QString& what, const QStringList& notes) {
        const QString text = notes.isEmpty()
            ? what
            : tr("%1 (%2 notes: %3)").arg(what).arg(notes.size()).arg(notes.join(QStringLiteral("; ")));
        w->statusBar()->showMessage(text, 10000);
    };
    auto* import = new QAction(tr("&Import Precision…"), this);
    import->setObjectName(QStringLiteral("importPrecisionAction"));
    import->setToolTip(tr("Per-layer precision from ONNX Runtime, TensorRT, AIMET or a rule list"));
    connect(import, &QAction::triggered, this, [w, s, config, filters, formatOf, reportNotes] {
        QString filter;
        const QString path = QFileDialog::getOpenFileName(w, tr("Import precision"),
            QSettings().value(QStringLiteral("precision/lastPath")).toString(), filters(false), &filter);
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("precision/lastPath"), path);
        QStringList notes;
        if (!config->importPrecision(path, formatOf(filter), &notes))
            s->errors()->report(w, tr("Importing precision settings"), config->lastError());
        else
            reportNotes(tr("Imported %1").arg(path.section(QLatin1Char('/'), -1)), notes);
    });
    auto* exportAction = new QAction(tr("E&xport Precision…"), this);
    exportAction->setObjectName(QStringLiteral("exportPrecisionAction"));
    exportAction->setToolTip(tr("The per-layer precision as ONNX Runtime overrides, TensorRT flags or rules"));
    connect(exportAction, &QAction::triggered, this, [w, s, config, filters, formatOf, reportNotes] {
        QString filter;
        const QString path = QFileDialog::getSaveFileName(w, tr("Export precision"),
            QSettings().value(QStringLiteral("precision/lastPath")).toString(), filters(true), &filter);
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("precision/lastPath"), path);
        QStringList notes;
        if (!config->exportPrecision(path, formatOf(filter), &notes))
            s->errors()->report(w, tr("Exporting precision settings"), config->lastError());
        else
            reportNotes(tr("Exported %1").arg(path.section(QLatin1Char('/'), -1)), notes);
    });
    window.addFileActions({import, exportAction});
}

} // namespace qs::ui
