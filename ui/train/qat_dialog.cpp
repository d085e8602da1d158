#include "ui/train/qat_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

namespace qs::ui {

namespace {

QSpinBox* intBox(int min, int max, int value, QWidget* parent)
{
    auto* box = new QSpinBox(parent);
    box->setRange(min, max);
    box->setValue(value);
    return box;
}

QDoubleSpinBox* rateBox(double value, QWidget* parent)
{
    auto* box = new QDoubleSpinBox(parent);
    box->setDecimals(6);
    box->setRange(1e-6, 1.0);
    box->setSingleStep(1e-4);
    box->setValue(value);
    return box;
}

} // namespace

QatDialog::QatDialog(const QatRequest& initial, const QString& bits, QWidget* parent)
    : QDialog(parent), preprocess_(initial.preprocess)
{
    setWindowTitle(tr("Train (QAT)"));
    auto* form = new QFormLayout;
    auto* bitsLabel = new QLabel(bits, this);
    bitsLabel->setWordWrap(true);
    bitsLabel->setToolTip(tr("The current bit configuration; change it in the layer table"));
    form->addRow(tr("Bits:"), bitsLabel);
    trainData_ = new QLineEdit(initial.trainData, this);
    trainData_->setToolTip(tr("Training samples: an IDX or NPY file, images:DIR or random:N"));
    form->addRow(tr("Training data:"), trainData_);
    evalData_ = new QLineEdit(initial.evalData, this);
    evalData_->setToolTip(tr("Held-out samples; the training data's own spec holds out its last samples"));
    form->addRow(tr("Held-out data:"), evalData_);
    steps_ = intBox(1, 1000000, initial.steps, this);
    form->addRow(tr("Steps:"), steps_);
    mode_ = new QComboBox(this);
    mode_->addItem(tr("End to end (distil the logits)"));
    mode_->addItem(tr("Block by block (reconstruct each block, BRECQ)"));
    mode_->setCurrentIndex(initial.blockwise ? 1 : 0);
    form->addRow(tr("Mode:"), mode_);
    batch_ = intBox(1, 4096, initial.batch, this);
    form->addRow(tr("Batch:"), batch_);
    lr_ = rateBox(initial.lr, this);
    form->addRow(tr("Learning rate:"), lr_);
    scaleLr_ = rateBox(initial.scaleLr, this);
    form->addRow(tr("Scale learning rate (LSQ):"), scaleLr_);
    evalEvery_ = intBox(0, 1000000, initial.evalEvery, this);
    evalEvery_->setSpecialValueText(tr("at the end"));
    form->addRow(tr("Evaluate every:"), evalEvery_);
    evalLimit_ = intBox(1, 1000000, initial.evalLimit, this);
    form->addRow(tr("Held-out samples:"), evalLimit_);
    checkpointEvery_ = intBox(0, 1000000, initial.checkpointEvery, this);
    checkpointEvery_->setSpecialValueText(tr("at the end"));
    checkpointEvery_->setToolTip(tr("Every checkpoint is recorded as a run (compare and export it like any run)"));
    form->addRow(tr("Checkpoint every:"), checkpointEvery_);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons->button(QDialogButtonBox::Ok)->setText(tr("Train"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(buttons);
}

QatRequest QatDialog::request() const
{
    QatRequest r;
    r.trainData = trainData_->text().trimmed();
    r.evalData = evalData_->text().trimmed();
    r.preprocess = preprocess_;
    r.steps = steps_->value();
    r.batch = batch_->value();
    r.lr = lr_->value();
    r.scaleLr = scaleLr_->value();
    r.blockwise = mode_->currentIndex() == 1;
    r.evalEvery = evalEvery_->value();
    r.evalLimit = evalLimit_->value();
    r.checkpointEvery = checkpointEvery_->value();
    return r;
}

} // namespace qs::ui
