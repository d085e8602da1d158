// The bit-width editor in the studio window, offscreen: the configuration columns of the
// layer table edit through the delegate (a multi-row selection edits every selected row
// as one undo step), Edit > Undo/Redo and their shortcuts, presets from the footer, and a
// footer that follows every edit with the size counted by the core and the prediction.
#include "analysis/bit_budget.h"
#include "support/studio_window.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/jobs/job_runner.h"
#include "ui/layers/config_footer.h"
#include "ui/layers/layer_filter_proxy.h"
#include "ui/layers/layer_table_model.h"
#include "ui/layers/layer_table_panel.h"
#include "ui/layers/quant_field_delegate.h"
#include "ui/main_window.h"
#include "ui/widgets/format.h"

#include <QAction>
#include <QComboBox>
#include <QLabel>
#include <QMenu>
#include <QSettings>
#include <QSignalSpy>
#include <QTableView>
#include <QToolButton>
#include <QUndoStack>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestBitEditor : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    QuantConfigDocument* config = nullptr;
    QTableView* view = nullptr;
    ConfigFooter* footer = nullptr;

    QModelIndex cell(int layerRow, int column) const
    {
        auto* proxy = window->layerPanel()->proxy();
        return proxy->mapFromSource(window->layerPanel()->model()->index(layerRow, column));
    }

    void selectRows(const QList<int>& rows)
    {
        view->clearSelection();
        for (int r : rows)
            view->selectionModel()->select(cell(r, 0), QItemSelectionModel::Select | QItemSelectionModel::Rows);
        view->selectionModel()->setCurrentIndex(cell(rows.front(), 0), QItemSelectionModel::NoUpdate);
    }

    // Edits `index` the way the view does: the delegate's editor, a choice, commit.
    void editWithDelegate(const QModelIndex& index, const QString& choice)
    {
        QuantFieldDelegate* d = window->layerPanel()->fieldDelegate();
        QStyleOptionViewItem option;
        std::unique_ptr<QWidget> editor(d->createEditor(view->viewport(), option, index));
        auto* combo = qobject_cast<QComboBox*>(editor.get());
        QVERIFY(combo);
        d->setEditorData(combo, index);
        const int i = combo->findData(choice);
        if (i >= 0)
            combo->setCurrentIndex(i);
        else
            combo->setEditText(choice);
        d->setModelData(combo, view->model(), index);
    }

private slots:
    void initTestCase()
    {
        window = qs::test::openDemoWindow(QStringLiteral("test_bit_editor"));
        QVERIFY(window);
        config = window->studio().config();
        view = window->layerPanel()->view();
        footer = window->findChild<ConfigFooter*>();
        QVERIFY(footer);
    }

    void init()
    {
        config->setConfig(QuantConfig{});
        config->undoStack()->clear();
    }

    void columnsShowTheConfiguration()
    {
        const LayerTableModel* m = window->layerPanel()->model();
        for (int r = 0; r < m->rowCount(); ++r) {
            QCOMPARE(m->index(r, LayerTableModel::WeightBits).data().toString(), QStringLiteral("8"));
            QCOMPARE(m->index(r, LayerTableModel::ActBits).data().toString(), QStringLiteral("8"));
            QCOMPARE(m->index(r, LayerTableModel::Granularity).data().toString(), QStringLiteral("channel"));
            QCOMPARE(m->index(r, LayerTableModel::Calibrator).data().toString(), QStringLiteral("minmax"));
            QVERIFY(m->flags(m->index(r, LayerTableModel::WeightBits)) & Qt::ItemIsEditable);
            QVERIFY(!(m->flags(m->index(r, LayerTableModel::Params)) & Qt::ItemIsEditable));
        }
    }

    void delegateEditsEverySelectedRow_data()
    {
        QTest::addColumn<int>("column");
        QTest::addColumn<QString>("choice");
        QTest::addColumn<QString>("shown");
        QTest::newRow("W bits") << int(LayerTableModel::WeightBits) << QStringLiteral("4") << QStringLiteral("4");
        QTest::newRow("A bits float") << int(LayerTableModel::ActBits) << QStringLiteral("16") << QStringLiteral("FP16");
        QTest::newRow("granularity typed") << int(LayerTableModel::Granularity) << QStringLiteral("group:48")
                                           << QStringLiteral("group:48");
        QTest::newRow("calibrator") << int(LayerTableModel::Calibrator) << QStringLiteral("entropy")
                                    << QStringLiteral("entropy");
    }
    void delegateEditsEverySelectedRow()
    {
        QFETCH(int, column);
        QFETCH(QString, choice);
        QFETCH(QString, shown);
        const LayerTableModel* m = window->layerPanel()->model();
        const QString before = m->index(0, column).data().toString();
        selectRows({1, 2, 5});
        editWithDelegate(cell(2, column), choice);
        QCOMPARE(config->undoStack()->count(), 1);
        for (int r = 0; r < m->rowCount(); ++r)
            QCOMPARE(m->index(r, column).data().toString(), (r == 1 || r == 2 || r == 5) ? shown : before);
        // Editing a row outside the selection edits only that row.
        editWithDelegate(cell(7, column), column == LayerTableModel::Calibrator ? QStringLiteral("mse") : QStringLiteral("3"));
        QCOMPARE(m->index(1, column).data().toString(), shown);
        // Edit > Undo (Ctrl+Z) takes back one edit at a time, Ctrl+Shift+Z redoes.
        QAction* undo = window->findChild<QAction*>(QStringLiteral("undoAction"));
        QAction* redo = window->findChild<QAction*>(QStringLiteral("redoAction"));
        QVERIFY(undo && redo);
        QCOMPARE(undo->shortcut(), QKeySequence(QKeySequence::Undo));
        QCOMPARE(redo->shortcut(), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z));
        window->activateWindow();
        QTest::keyClick(window.get(), Qt::Key_Z, Qt::ControlModifier);
        QTest::keyClick(window.get(), Qt::Key_Z, Qt::ControlModifier);
        for (int r = 0; r < m->rowCount(); ++r)
            QCOMPARE(m->index(r, column).data().toString(), before);
        QTest::keyClick(window.get(), Qt::Key_Z, Qt::ControlModifier | Qt::ShiftModifier);
        QCOMPARE(m->index(5, column).data().toString(), shown);
        QCOMPARE(m->index(7, column).data().toString(), before);
    }

    void refusedEditChangesNothing()
    {
        selectRows({0});
        QSignalSpy refused(window->layerPanel()->fieldDelegate(), &QuantFieldDelegate::editRefused);
        editWithDelegate(cell(0, LayerTableModel::Granularity), QStringLiteral("rows"));
        QCOMPARE(refused.count(), 1);
        QCOMPARE(config->undoStack()->count(), 0);
    }

    void footerFollowsEdits()
    {
        const ModelSizeTable& sizes = *config->sizes();
        auto expectSize = [&] {
            const int64_t bytes = (sizes.sizeBits(config->config()) + 7) / 8;
            const QString text = footer->sizeLabel()->text();
            QVERIFY2(text.contains(formatCount(bytes) + QStringLiteral(" bytes")), qPrintable(text));
            const double ratio = double(sizes.floatBits) / double(sizes.sizeBits(config->config()));
            QVERIFY2(text.contains(QString::number(ratio, 'f', 2) + QChar(0x00D7)), qPrintable(text));
        };
        expectSize();
        QVERIFY(footer->errorLabel()->text().contains(QStringLiteral("no sensitivity yet")));
        const QString at8 = footer->sizeLabel()->text();
        // The preset menu of the footer: W4A8 makes the model smaller, undo brings it back.
        QMenu* menu = footer->presetButton()->menu();
        QVERIFY(menu);
        menu->actions().at(1)->trigger(); // W4A8
        QCOMPARE(config->layer(3).weight.bits, 4);
        expectSize();
        QVERIFY(footer->sizeLabel()->text() != at8);
        config->undoStack()->undo();
        QCOMPARE(footer->sizeLabel()->text(), at8);

        // With a sensitivity result the prediction appears and moves with the bits.
        auto s = std::make_shared<SensitivityResult>();
        for (const auto& name : config->layerNames()) {
            LayerSensitivity l;
            l.layer = name;
            l.byBits[4].sqnrDb = 20;
            l.byBits[8].sqnrDb = 40;
            s->layers.push_back(l);
        }
        config->setSensitivity(s);
        const double at8Db = -10 * std::log10(8 * 1e-4);
        QVERIFY2(footer->errorLabel()->text().contains(QString::number(at8Db, 'f', 1) + QStringLiteral(" dB")),
                 qPrintable(footer->errorLabel()->text()));
        config->applyPreset(QuantConfigDocument::Preset::W4A8);
        const double at4Db = -10 * std::log10(8 * 1e-2);
        QVERIFY2(footer->errorLabel()->text().contains(QString::number(at4Db, 'f', 1) + QStringLiteral(" dB")),
                 qPrintable(footer->errorLabel()->text()));
        config->setSensitivity(nullptr);
    }

    void fileMenuHasConfigActions()
    {
        QVERIFY(window->findChild<QAction*>(QStringLiteral("saveConfigAction")));
        QVERIFY(window->findChild<QAction*>(QStringLiteral("loadConfigAction")));
    }

    void cleanupTestCase()
    {
        window->studio().jobs()->cancelAll();
        window->studio().jobs()->waitForWorkers(10000);
        window.reset();
    }
};

QTEST_MAIN(TestBitEditor)
#include "test_bit_editor.moc"
