#include "ui/runs/quantize_dialog.h"

#include "ui/runs/runs_table_model.h"

#include "data/dataset.h"
#include "data/input_binding.h"
#include "quant/session.h"
#include "util/error.h"

#include <QCheckBox>
#include <QColor>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>

namespace qs::ui {
namespace {

QWidget* withBrowse(QLineEdit* edit, QWidget* parent)
{
    auto* w = new QWidget(parent);
    auto* h = new QHBoxLayout(w);
    h->setContentsMargins(0, 0, 0, 0);
    h->addWidget(edit, 1);
    auto* b = new QToolButton(w);
    b->setText(QStringLiteral("\u2026"));
    b->setToolTip(QStringLiteral("Choose an IDX or NPY file"));
    QObject::connect(b, &QToolButton::clicked, w, [edit, parent] {
        const QString path =
            QFileDialog::getOpenFileName(parent, QStringLiteral("Data"), QFileInfo(edit->text()).absolutePath(),
                QStringLiteral("Images and arrays (*idx3-ubyte *idx3-ubyte.gz *.npy *.npz);;All files (*)"));
        if (!path.isEmpty())
            edit->setText(path);
    });
    h->addWidget(b);
    return w;
}

} // namespace

QString shapeFieldTemplate(const ValueInfo& input, int batchAxis)
{
    if (!input.dims)
        return {};
    QStringList dims;
    for (std::size_t d = 0; d < input.dims->size(); ++d) {
        const int64_t v = (*input.dims)[d].value;
        dims << (v >= 0 ? QString::number(v) : int(d) == batchAxis ? QStringLiteral("1") : QStringLiteral("?"));
    }
    return dims.join(QLatin1Char('x'));
}

std::optional<Shape> parseShapeField(const QString& text, const ValueInfo& input)
{
    Shape shape;
    try {
        shape = parseInputShape(input.name + "=" + text.trimmed().toStdString()).second;
    } catch (const Error&) {
        return std::nullopt;
    }
    if (input.dims && input.dims->size() != shape.size())
        return std::nullopt;
    return shape;
}

QuantizeDialog::QuantizeDialog(const QuantizeRequest& initial, QWidget* parent, std::shared_ptr<const Graph> graph)
    : QDialog(parent), graph_(std::move(graph))
{
    setObjectName(QStringLiteral("quantizeDialog"));
    setWindowTitle(QStringLiteral("Quantize"));

    algorithms_ = new QListWidget(this);
    algorithms_->setObjectName(QStringLiteral("quantizeAlgorithms"));
    for (const AlgorithmInfo& a : qs::algorithms()) {
        auto* item = new QListWidgetItem(QString::fromStdString(a.name), algorithms_);
        item->setData(Qt::UserRole, QString::fromStdString(a.name));
        item->setToolTip(QStringLiteral("%1\n(%2)").arg(QString::fromStdString(a.summary),
            a.stage == AlgorithmInfo::Stage::BeforeCalibration ? QStringLiteral("before calibration")
                                                               : QStringLiteral("after the weights are quantized")));
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(initial.algorithms.contains(item->text()) ? Qt::Checked : Qt::Unchecked);
    }
    algorithms_->setMinimumHeight(150);

    calibData_ = new QLineEdit(initial.calibData, this);
    calibData_->setObjectName(QStringLiteral("quantizeCalibData"));
    calibData_->setToolTip(QStringLiteral(
        "IDX images, an NPY array, an NPZ or a folder of NPY files named after the inputs, or random:N"));
    preprocess_ = new QLineEdit(initial.preprocess, this);
    preprocess_->setObjectName(QStringLiteral("quantizePreprocess"));
    preprocess_->setPlaceholderText(QStringLiteral("torchvision, paddleocr-rec, yolo or items (images only)"));
    preprocess_->setToolTip(QStringLiteral("How images:DIR and imagelist:FILE data are resized, cropped and normalized "
                                           "(the CLI's --preprocess; File › Calibration Data previews it)"));
    evalData_ = new QLineEdit(initial.evalData, this);
    evalData_->setObjectName(QStringLiteral("quantizeEvalData"));
    evalData_->setToolTip(QStringLiteral("Data held out from calibration, for the accuracy and fidelity metrics. Top-1 "
                                         "needs labels: the IDX label file beside the images is found by name"));
    evalData_->setPlaceholderText(QStringLiteral("held-out data (not the calibration file)"));
    evalOnCalib_ = new QCheckBox(QStringLiteral("Evaluate on the calibration data (not held out)"), this);
    evalOnCalib_->setObjectName(QStringLiteral("quantizeEvalOnCalibration"));
    evalOnCalib_->setToolTip(QStringLiteral("The metrics are then measured on samples the ranges were fitted to: "
                                            "optimistic. The run records it and the runs list says so."));
    evalOnCalib_->setChecked(!initial.evalData.isEmpty() && initial.evalData == initial.calibData);
    heldOut_ = new QCheckBox(QStringLiteral("after the samples calibration takes (held out)"), this);
    heldOut_->setObjectName(QStringLiteral("quantizeHeldOut"));
    heldOut_->setToolTip(QStringLiteral("Evaluate on the calibration file's samples after the first ones calibration "
                                        "uses (the calibration limit): a held-out split of the same file"));
    heldOut_->setChecked(initial.evalFrom > 0);
    evalHint_ = new QLabel(this);
    evalHint_->setObjectName(QStringLiteral("quantizeEvalHint"));
    evalHint_->setWordWrap(true);
    evalHint_->setProperty("role", "muted");
    calibLimit_ = new QSpinBox(this);
    calibLimit_->setObjectName(QStringLiteral("quantizeCalibLimit"));
    calibLimit_->setRange(1, 1000000);
    calibLimit_->setValue(initial.calibLimit);
    calibLimit_->setSuffix(QStringLiteral(" samples"));
    evalLimit_ = new QSpinBox(this);
    evalLimit_->setObjectName(QStringLiteral("quantizeEvalLimit"));
    evalLimit_->setRange(0, 10000000);
    evalLimit_->setSpecialValueText(QStringLiteral("all samples"));
    evalLimit_->setValue(initial.evalLimit);
    evalLimit_->setSuffix(QStringLiteral(" samples"));
    batch_ = new QSpinBox(this);
    batch_->setRange(1, 4096);
    batch_->setValue(initial.batch);
    int8_ = new QCheckBox(QStringLiteral("Evaluate with real INT8 kernels (oneDNN)"), this);
    int8_->setChecked(initial.int8);
    tags_ = new QLineEdit(initial.tags.join(QStringLiteral(", ")), this);
    tags_->setObjectName(QStringLiteral("quantizeTags"));
    tags_->setPlaceholderText(QStringLiteral("comma-separated"));
    note_ = new QLineEdit(initial.note, this);
    note_->setObjectName(QStringLiteral("quantizeNote"));

    auto* form = new QFormLayout;
    form->addRow(QStringLiteral("Algorithms"), algorithms_);
    form->addRow(QStringLiteral("Calibration data"), withBrowse(calibData_, this));
    if (graph_) {
        inputs_ = new QTableWidget(0, 5, this);
        inputs_->setObjectName(QStringLiteral("quantizeDataInputs"));
        inputs_->setHorizontalHeaderLabels({QStringLiteral("Input"), QStringLiteral("Model shape"),
            QStringLiteral("Shape to run"), QStringLiteral("Type"), QStringLiteral("Array")});
        inputs_->horizontalHeader()->setStretchLastSection(true);
        inputs_->verticalHeader()->hide();
        inputs_->setEditTriggers(QAbstractItemView::AllEditTriggers);
        inputs_->setMaximumHeight(120);
        shapeHint_ = new QLabel(this);
        shapeHint_->setObjectName(QStringLiteral("quantizeShapeHint"));
        shapeHint_->setWordWrap(true);
        shapeHint_->setMinimumHeight(shapeHint_->fontMetrics().height());
        shapeHint_->setStyleSheet(QStringLiteral("color: #c0392b;"));
        auto* feeds = new QWidget(this);
        auto* feedsLayout = new QVBoxLayout(feeds);
        feedsLayout->setContentsMargins(0, 0, 0, 0);
        feedsLayout->addWidget(inputs_);
        feedsLayout->addWidget(shapeHint_);
        form->addRow(QStringLiteral("Feeds"), feeds);
        fillInputs(initial.inputShapes);
        connect(calibData_, &QLineEdit::textChanged, this, &QuantizeDialog::showInputs);
        connect(inputs_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
            if (item->column() == ShapeColumn)
                checkShapes();
        });
    }
    form->addRow(QStringLiteral("Calibration limit"), calibLimit_);
    form->addRow(QStringLiteral("Evaluation data"), withBrowse(evalData_, this));
    form->addRow(QString(), evalOnCalib_);
    form->addRow(QString(), heldOut_);
    form->addRow(QString(), evalHint_);
    form->addRow(QStringLiteral("Evaluation limit"), evalLimit_);
    form->addRow(QStringLiteral("Image preprocessing"), preprocess_);
    form->addRow(QStringLiteral("Batch"), batch_);
    form->addRow(QString(), int8_);
    form->addRow(QStringLiteral("Tags"), tags_);
    form->addRow(QStringLiteral("Note"), note_);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    ok_ = buttons->button(QDialogButtonBox::Ok);
    ok_->setText(QStringLiteral("Quantize"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(buttons);
    if (graph_)
        showInputs();
    connect(evalOnCalib_, &QCheckBox::toggled, this, &QuantizeDialog::updateEvaluation);
    connect(heldOut_, &QCheckBox::toggled, this, &QuantizeDialog::updateEvaluation);
    connect(calibLimit_, &QSpinBox::valueChanged, this, &QuantizeDialog::updateEvaluation);
    connect(calibData_, &QLineEdit::textChanged, this, &QuantizeDialog::updateEvaluation);
    connect(evalData_, &QLineEdit::textChanged, this, &QuantizeDialog::updateEvaluation);
    updateEvaluation();
}

QString QuantizeDialog::problem() const
{
    if (evalData_->text().trimmed().isEmpty())
        return QStringLiteral("Choose the evaluation data, or tick \u201CEvaluate on the calibration data\u201D.");
    return shapeProblem_;
}

void QuantizeDialog::updateEvaluation()
{
    const bool same = evalOnCalib_->isChecked();
    if (same && evalData_->text() != calibData_->text()) {
        const QSignalBlocker quiet(evalData_);
        evalData_->setText(calibData_->text());
    }
    evalData_->setEnabled(!same);
    heldOut_->setEnabled(same);
    const QString eval = evalData_->text().trimmed();
    evalHint_->setText(eval.isEmpty() ? problem()
            : same && heldOut_->isChecked()
            ? QStringLiteral("The metrics will be measured on the calibration file from sample %1 on: "
                             "held out from the %1 calibration takes.")
                  .arg(calibLimit_->value())
            : eval == calibData_->text().trimmed()
            ? QStringLiteral("The metrics will be measured on the calibration data: not held out.")
            : QStringLiteral("The metrics will be measured on %1, held out from calibration.")
                  .arg(QFileInfo(eval).fileName()));
    if (ok_)
        ok_->setEnabled(problem().isEmpty());
}

// One row per model input; the shape field is editable where the model leaves
// dimensions open (the batch aside), prefilled from `shapes` or the model's dimensions.
void QuantizeDialog::fillInputs(const QMap<QString, QString>& shapes)
{
    const Graph& g = *graph_;
    const QSignalBlocker quiet(inputs_);
    inputs_->setRowCount(int(g.inputs.size()));
    for (std::size_t i = 0; i < g.inputs.size(); ++i) {
        const ValueInfo& in = g.inputs[i];
        const QString name = QString::fromStdString(in.name);
        const int batchAxis = batchAxisOf(g, in);
        QString symbols;
        if (in.dims)
            for (std::size_t d = 0; d < in.dims->size(); ++d)
                if (const Dim& dim = (*in.dims)[d]; dim.value < 0)
                    symbols += QStringLiteral("\ndimension %1: %2")
                                   .arg(d)
                                   .arg(dim.param.empty() ? QStringLiteral("unknown") : QString::fromStdString(dim.param));
        const QString shape = shapes.contains(name) ? shapes[name] : shapeFieldTemplate(in, batchAxis);
        const QStringList cells = {name, QString::fromStdString(in.text()), shape,
            QString::fromLatin1(dtypeName(in.dtype == DType::Undefined ? DType::Float : in.dtype)), QString()};
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            item->setToolTip(cells[c]);
            item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
            inputs_->setItem(int(i), c, item);
        }
        if (hasOpenDimensions(in, batchAxis)) {
            QTableWidgetItem* field = inputs_->item(int(i), ShapeColumn);
            field->setFlags(field->flags() | Qt::ItemIsEditable);
            field->setBackground(QColor(0xff, 0xf8, 0xe1)); // the one cell to type in
            field->setToolTip(QStringLiteral("The full shape to run %1 at, such as 1x3x48x320 (the batch is "
                                             "ignored), as --input-shape gives the CLI. Random data needs every "
                                             "dimension; other data fixes the \"?\" ones itself.%2")
                                  .arg(name, symbols));
        }
    }
}

// Which array feeds each input, from file names and the NPZ directory only (no array is read).
void QuantizeDialog::showInputs()
{
    const Graph& g = *graph_;
    std::vector<std::pair<std::string, std::string>> sources;
    QString error;
    try {
        sources = dataInputSources(calibData_->text().trimmed().toStdString(), g);
    } catch (const Error& e) {
        error = QString::fromStdString(e.what());
    }
    {
        const QSignalBlocker quiet(inputs_);
        for (std::size_t i = 0; i < g.inputs.size(); ++i) {
            const QString source = i < sources.size() ? QString::fromStdString(sources[i].second) : error;
            QTableWidgetItem* item = inputs_->item(int(i), ArrayColumn);
            item->setText(source);
            item->setToolTip(source);
        }
    }
    inputs_->resizeColumnsToContents();
    checkShapes();
}

// A malformed shape field, or one left open with random data, disables Quantize and says why.
void QuantizeDialog::checkShapes()
{
    const Graph& g = *graph_;
    const bool random = calibData_->text().trimmed().startsWith(QStringLiteral("random:"));
    QStringList problems;
    for (std::size_t i = 0; i < g.inputs.size(); ++i) {
        const QTableWidgetItem* field = inputs_->item(int(i), ShapeColumn);
        if (!(field->flags() & Qt::ItemIsEditable))
            continue;
        const QString text = field->text().trimmed(), name = QString::fromStdString(g.inputs[i].name);
        const bool pending = text.isEmpty() || text.contains(QLatin1Char('?'));
        if ((pending && !random) || parseShapeField(text, g.inputs[i]))
            continue; // complete, or the data binds what is left open
        if (pending)
            problems << QStringLiteral("%1: random data needs every dimension; replace each \"?\"").arg(name);
        else
            problems << QStringLiteral("%1: \"%2\" is not %3 positive integers such as 1x3x48x320")
                            .arg(name, text,
                                g.inputs[i].dims ? QString::number(g.inputs[i].dims->size()) : QStringLiteral("x-separated"));
    }
    shapeProblem_ = problems.join(QLatin1Char('\n'));
    shapeHint_->setText(shapeProblem_); // empty keeps its line: the table does not jump
    if (ok_)
        ok_->setEnabled(problem().isEmpty());
}

QuantizeRequest QuantizeDialog::request() const
{
    QuantizeRequest r;
    for (int i = 0; i < algorithms_->count(); ++i)
        if (algorithms_->item(i)->checkState() == Qt::Checked)
            r.algorithms << algorithms_->item(i)->data(Qt::UserRole).toString();
    r.calibData = calibData_->text().trimmed();
    r.evalData = evalData_->text().trimmed();
    r.preprocess = preprocess_->text().trimmed();
    r.calibLimit = calibLimit_->value();
    r.evalLimit = evalLimit_->value();
    r.evalFrom = evalOnCalib_->isChecked() && heldOut_->isChecked() ? calibLimit_->value() : 0;
    r.batch = batch_->value();
    r.int8 = int8_->isChecked();
    r.tags = RunsTableModel::parseTags(tags_->text());
    r.note = note_->text();
    if (inputs_)
        for (int i = 0; i < inputs_->rowCount(); ++i) {
            const QTableWidgetItem* field = inputs_->item(i, ShapeColumn);
            if ((field->flags() & Qt::ItemIsEditable) && parseShapeField(field->text(), graph_->inputs[std::size_t(i)]))
                r.inputShapes[inputs_->item(i, NameColumn)->text()] = field->text().trimmed();
        }
    return r;
}

} // namespace qs::ui
