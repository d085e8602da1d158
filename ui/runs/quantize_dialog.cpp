#include "ui/runs/quantize_dialog.h"

#include "ui/runs/runs_table_model.h"

#include "data/dataset.h"
#include "quant/session.h"
#include "util/error.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
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
    evalData_ = new QLineEdit(initial.evalData, this);
    evalData_->setObjectName(QStringLiteral("quantizeEvalData"));
    evalData_->setToolTip(QStringLiteral("Top-1 needs labels: the IDX label file beside the images is found by name"));
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
        inputs_ = new QTableWidget(0, 4, this);
        inputs_->setObjectName(QStringLiteral("quantizeDataInputs"));
        inputs_->setHorizontalHeaderLabels(
            {QStringLiteral("Input"), QStringLiteral("Shape"), QStringLiteral("Type"), QStringLiteral("Array")});
        inputs_->horizontalHeader()->setStretchLastSection(true);
        inputs_->verticalHeader()->hide();
        inputs_->setEditTriggers(QAbstractItemView::NoEditTriggers);
        inputs_->setMaximumHeight(120);
        form->addRow(QStringLiteral("Feeds"), inputs_);
        connect(calibData_, &QLineEdit::textChanged, this, &QuantizeDialog::showInputs);
        showInputs();
    }
    form->addRow(QStringLiteral("Calibration limit"), calibLimit_);
    form->addRow(QStringLiteral("Evaluation data"), withBrowse(evalData_, this));
    form->addRow(QStringLiteral("Evaluation limit"), evalLimit_);
    form->addRow(QStringLiteral("Batch"), batch_);
    form->addRow(QString(), int8_);
    form->addRow(QStringLiteral("Tags"), tags_);
    form->addRow(QStringLiteral("Note"), note_);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons->button(QDialogButtonBox::Ok)->setText(QStringLiteral("Quantize"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(buttons);
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
    inputs_->setRowCount(int(g.inputs.size()));
    for (std::size_t i = 0; i < g.inputs.size(); ++i) {
        const ValueInfo& in = g.inputs[i];
        const QString source = i < sources.size() ? QString::fromStdString(sources[i].second) : error;
        const QStringList cells = {QString::fromStdString(in.name), QString::fromStdString(in.text()),
            QString::fromLatin1(dtypeName(in.dtype == DType::Undefined ? DType::Float : in.dtype)), source};
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            item->setToolTip(cells[c]);
            inputs_->setItem(int(i), c, item);
        }
    }
    inputs_->resizeColumnsToContents();
}

QuantizeRequest QuantizeDialog::request() const
{
    QuantizeRequest r;
    for (int i = 0; i < algorithms_->count(); ++i)
        if (algorithms_->item(i)->checkState() == Qt::Checked)
            r.algorithms << algorithms_->item(i)->data(Qt::UserRole).toString();
    r.calibData = calibData_->text().trimmed();
    r.evalData = evalData_->text().trimmed();
    r.calibLimit = calibLimit_->value();
    r.evalLimit = evalLimit_->value();
    r.batch = batch_->value();
    r.int8 = int8_->isChecked();
    r.tags = RunsTableModel::parseTags(tags_->text());
    r.note = note_->text();
    return r;
}

} // namespace qs::ui
