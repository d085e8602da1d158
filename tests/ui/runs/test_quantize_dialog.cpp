// The Quantize dialog's shape fields, the studio's twin of the CLI's --input-shape: a
// model whose input has symbolic dimensions ([N,3,8,W], as the OCR recognizer's
// [?,3,48,?]) gets an editable field prefilled "1x3x8x?"; random data needs every "?"
// replaced (Quantize stays disabled and says why), other data binds them itself. In the
// studio the shapes reach calibration and quantization, and the run records them.
// QS_SCREENSHOT_DIR=<dir> saves a PNG of the dialog.
#include "graph/onnx_import.h"
#include "store/store.h"
#include "support/onnx_builder.h"
#include "support/studio_window.h"
#include "ui/document/model_document.h"
#include "ui/main_window.h"
#include "ui/runs/quantize_dialog.h"
#include "ui/runs/runs_controller.h"
#include "ui/runs/runs_feature.h"

#include <QDialogButtonBox>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

namespace {

// x [N,3,8,W] -> Conv 3x3 pad 1 (4 channels) -> Relu -> GlobalAveragePool -> y [N,4,1,1].
test::OnnxBuilder symbolicModel()
{
    test::OnnxBuilder b;
    auto* x = b.input("x", {-1, 3, 8, -1});
    x->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(3)->set_dim_param("W");
    std::vector<float> w(4 * 3 * 3 * 3);
    for (std::size_t i = 0; i < w.size(); ++i)
        w[i] = float(int(i * 5 % 9) - 4) * 0.1f;
    b.initializer("w", {4, 3, 3, 3}, w);
    auto* conv = b.node("Conv", {"x", "w"}, {"c"}, "conv");
    test::OnnxBuilder::intsAttr(conv, "pads", {1, 1, 1, 1});
    b.node("Relu", {"c"}, {"r"}, "relu");
    b.node("GlobalAveragePool", {"r"}, {"y"}, "pool");
    b.output("y", {-1, 4, 1, 1});
    return b;
}

QPushButton* okButton(QuantizeDialog& d)
{
    return d.findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Ok);
}

} // namespace

class TestQuantizeDialog : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    std::shared_ptr<const Graph> graph;

private slots:
    void initTestCase()
    {
        QVERIFY(dir.isValid());
        graph = std::make_shared<const Graph>(importOnnxBytes(symbolicModel().bytes(), "symbolic.onnx", ""));
    }

    void fieldTextAndParsing()
    {
        const ValueInfo& x = graph->inputs.front();
        QCOMPARE(shapeFieldTemplate(x, 0), QStringLiteral("1x3x8x?"));
        QCOMPARE(parseShapeField(QStringLiteral(" 1x3x8x20 "), x), std::optional<Shape>(Shape {1, 3, 8, 20}));
        for (const char* bad : {"1x3x8x?", "1x3x8", "1x3x8x20x1", "1x3x8x0", "", "1x3x8xW"})
            QVERIFY2(!parseShapeField(QString::fromLatin1(bad), x), bad);
    }

    // Random data: Quantize is disabled until the "?" is replaced; then the request
    // carries the shape. A malformed shape says what is expected.
    void randomDataNeedsEveryDimension()
    {
        QuantizeRequest r;
        r.calibData = r.evalData = QStringLiteral("random:8");
        QuantizeDialog dialog(r, nullptr, graph);
        dialog.resize(760, 640);
        QTableWidget* t = dialog.inputTable();
        QTableWidgetItem* field = t->item(0, QuantizeDialog::ShapeColumn);
        QCOMPARE(field->text(), QStringLiteral("1x3x8x?"));
        QVERIFY(field->flags() & Qt::ItemIsEditable);
        QVERIFY(!(t->item(0, QuantizeDialog::ModelShapeColumn)->flags() & Qt::ItemIsEditable));
        QCOMPARE(t->item(0, QuantizeDialog::ModelShapeColumn)->text(), QStringLiteral("[N,3,8,W]"));
        QVERIFY(field->toolTip().contains(QStringLiteral("dimension 3: W")));
        QVERIFY2(dialog.shapeProblem().contains(QStringLiteral("random data needs every dimension")),
            qPrintable(dialog.shapeProblem()));
        QVERIFY(!okButton(dialog)->isEnabled());
        QVERIFY(dialog.request().inputShapes.isEmpty());

        field->setText(QStringLiteral("1x3x8x"));
        QVERIFY2(dialog.shapeProblem().contains(QStringLiteral("4 positive integers")), qPrintable(dialog.shapeProblem()));
        QVERIFY(!okButton(dialog)->isEnabled());

        field->setText(QStringLiteral("1x3x8x24"));
        QCOMPARE(dialog.shapeProblem(), QString());
        QVERIFY(okButton(dialog)->isEnabled());
        QCOMPARE(dialog.request().inputShapes.value(QStringLiteral("x")), QStringLiteral("1x3x8x24"));
        // Another data spec keeps what was typed.
        dialog.calibData()->setText(QStringLiteral("random:4"));
        QCOMPARE(field->text(), QStringLiteral("1x3x8x24"));
        QVERIFY(test::screenshot(&dialog, QStringLiteral("quantize_dialog_shapes.png")));
    }

    // Data that has the samples' shape binds the open dimensions itself: a "?" is fine.
    void fileDataBindsOpenDimensions()
    {
        QuantizeRequest r;
        r.calibData = r.evalData = dir.filePath(QStringLiteral("x.npy"));
        r.inputShapes[QStringLiteral("x")] = QStringLiteral("1x3x8x?");
        QuantizeDialog dialog(r, nullptr, graph);
        QCOMPARE(dialog.shapeProblem(), QString());
        QVERIFY(okButton(dialog)->isEnabled());
        QVERIFY(dialog.request().inputShapes.isEmpty());
        dialog.calibData()->setText(QStringLiteral("random:8"));
        QVERIFY(!okButton(dialog)->isEnabled());
    }

    // The studio on the model: calibration on random data takes the shape (failed before:
    // "input \"x\" has unknown non-batch dimensions"), and a quantization run records it.
    void studioCalibratesAndRecordsTheShape()
    {
        const QString modelPath = dir.filePath(QStringLiteral("symbolic.onnx")), db = dir.filePath(QStringLiteral("s.db"));
        symbolicModel().save(modelPath.toStdString());
        test::RecordingReporter* errors = nullptr;
        const auto window = test::openStudio(QStringLiteral("test_quantize_dialog"), db, errors);
        QVERIFY(window);
        Studio& studio = window->studio();
        QSignalSpy opened(&studio, &Studio::modelOpened);
        studio.openModel(modelPath);
        QVERIFY(opened.wait(30000));
        studio.setDataPath(QString());
        QCOMPARE(studio.calibrationDataSpec(), QStringLiteral("random:64"));

        QSignalSpy calibrated(&studio, &Studio::calibrationFinished);
        QVERIFY(studio.runCalibration() >= 0);
        QTRY_VERIFY_WITH_TIMEOUT(!errors->messages.isEmpty(), 20000); // no shape for W
        QVERIFY2(errors->messages.front().contains(QStringLiteral("--input-shape")), qPrintable(errors->messages.front()));
        errors->messages.clear();

        studio.setInputShapes({{QStringLiteral("x"), QStringLiteral("1x3x8x12")}});
        QVERIFY(studio.runCalibration() >= 0);
        QVERIFY(calibrated.wait(30000));
        QCOMPARE(studio.document()->activations()->inputShape, QStringLiteral("[N,3,8,12]"));

        RunsController* runs = window->feature<RunsFeature>()->controller();
        QuantizeRequest r;
        r.calibData = r.evalData = QStringLiteral("random:8");
        r.inputShapes[QStringLiteral("x")] = QStringLiteral("1x3x8x20");
        QSignalSpy stored(runs, &RunsController::runStored);
        QVERIFY(runs->quantize(r) > 0);
        QVERIFY2(stored.wait(60000), qPrintable(errors->messages.join('\n')));
        const RunRecord run = Store::open(db.toStdString(), {.mode = OpenMode::ReadOnly}).run(stored.at(0).at(0).toLongLong());
        QCOMPARE(QString::fromStdString(run.config["calibration"]["input_shapes"]["x"].dump()),
            QStringLiteral("[1,3,8,20]"));
        QCOMPARE(QString::fromStdString(run.config["evaluation"]["input_shapes"]["x"].dump()),
            QStringLiteral("[1,3,8,20]"));
        QCOMPARE(studio.inputShapes().value(QStringLiteral("x")), QStringLiteral("1x3x8x20"));
        QVERIFY(errors->messages.isEmpty());
    }
};

QTEST_MAIN(TestQuantizeDialog)
#include "test_quantize_dialog.moc"
