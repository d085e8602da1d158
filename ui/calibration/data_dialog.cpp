// The calibration-data dialog: source, preprocessing fields and the preview job's result.
#include "ui/calibration/data_dialog.h"

#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"

#include "data/image_dataset.h"
#include "data/preprocess.h"
#include "util/error.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPainter>
#include <QPointer>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QTableWidget>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace qs::ui {

namespace {

constexpr int kThumbSide = 80;
const QString kCustom = QStringLiteral("custom");

QString triple(const std::vector<float>& v)
{
    QStringList out;
    for (const float x : v)
        out << QString::number(double(x), 'g', 6);
    return out.join(QStringLiteral(", "));
}

QString scaleText(double scale)
{
    const double inverse = 1.0 / scale;
    if (scale == 1)
        return QStringLiteral("1");
    if (std::fabs(inverse - std::round(inverse)) < 1e-6 * inverse)
        return QStringLiteral("1/%1").arg(qlonglong(std::llround(inverse)));
    return QString::number(scale, 'g', 8);
}

// "0.485, 0.456 0.406" -> "0.485:0.456:0.406" (the items' separator).
QString itemList(const QString& text)
{
    return text.split(QRegularExpression(QStringLiteral("[,;:\\s]+")), Qt::SkipEmptyParts).join(QLatin1Char(':'));
}

QSpinBox* sizeSpin(QWidget* parent, int min)
{
    auto* s = new QSpinBox(parent);
    s->setRange(min, 8192);
    s->setSpecialValueText(min == 0 ? QStringLiteral("none") : QString());
    return s;
}

QWidget* pair(QWidget* parent, QWidget* a, QWidget* b, const QString& between)
{
    auto* w = new QWidget(parent);
    auto* h = new QHBoxLayout(w);
    h->setContentsMargins(0, 0, 0, 0);
    h->addWidget(a, 1);
    if (!between.isEmpty())
        h->addWidget(new QLabel(between, w));
    h->addWidget(b, 1);
    return w;
}

QTableWidgetItem* cell(const QString& text, bool number = false)
{
    auto* item = new QTableWidgetItem(text);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
    if (number)
        item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}

QTableWidget* table(QWidget* parent, const QStringList& headers, const QString& name)
{
    auto* t = new QTableWidget(0, int(headers.size()), parent);
    t->setObjectName(name);
    t->setHorizontalHeaderLabels(headers);
    t->verticalHeader()->hide();
    t->horizontalHeader()->setStretchLastSection(true);
    t->setSelectionMode(QAbstractItemView::NoSelection);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    return t;
}

// The resize and crop of a resolved pipeline, in words.
QString resizeSteps(const Preprocess& p)
{
    using R = Preprocess::Resize;
    QStringList steps;
    switch (p.resize) {
    case R::None:
        steps << QStringLiteral("no resize");
        break;
    case R::Shorter:
        steps << QStringLiteral("shorter side %1").arg(p.height);
        break;
    case R::Exact:
        steps << QStringLiteral("resize %1\u00D7%2").arg(p.width).arg(p.height);
        break;
    case R::Letterbox:
        steps << QStringLiteral("letterbox %1\u00D7%2").arg(p.width).arg(p.height);
        break;
    case R::KeepRatio:
        steps << QStringLiteral("height %1, width up to %2").arg(p.height).arg(p.width);
        break;
    }
    if (p.cropWidth > 0)
        steps << QStringLiteral("crop %1\u00D7%2").arg(p.cropWidth).arg(p.cropHeight);
    return steps.join(QStringLiteral(" \u2192 "));
}

// Before above after, one icon.
QPixmap thumbPixmap(const DataPreview::Thumb& t)
{
    QPixmap pm(kThumbSide, t.before.isNull() ? kThumbSide : 2 * kThumbSide + 4);
    pm.fill(Qt::transparent);
    QPainter painter(&pm);
    auto draw = [&](const QImage& image, int top) {
        if (image.isNull())
            return;
        painter.drawImage(QPoint((kThumbSide - image.width()) / 2, top + (kThumbSide - image.height()) / 2), image);
    };
    // Arrays have no decoded image: their sample alone, on top.
    draw(t.before, 0);
    draw(t.after, t.before.isNull() ? 0 : kThumbSide + 4);
    return pm;
}

} // namespace

CalibrationDataDialog::CalibrationDataDialog(Studio& studio, QWidget* parent)
    : QDialog(parent), studio_(studio), jobs_(studio.jobs())
{
    setWindowTitle(tr("Calibration Data"));
    setObjectName(QStringLiteral("calibrationDataDialog"));

    kind_ = new QComboBox(this);
    kind_->setObjectName(QStringLiteral("dataKind"));
    kind_->addItems({tr("Image folder (class subfolders or flat)"), tr("Image list file (path,label lines)"),
        tr("IDX or NPY file"), tr("Random inputs")});
    path_ = new QLineEdit(this);
    path_->setObjectName(QStringLiteral("dataPath"));
    browse_ = new QPushButton(tr("Browse\u2026"), this);
    count_ = new QSpinBox(this);
    count_->setRange(1, 100000);
    count_->setValue(64);
    count_->setSuffix(tr(" samples"));

    auto* source = new QGroupBox(tr("Data"), this);
    auto* sourceForm = new QFormLayout(source);
    sourceForm->addRow(tr("Kind"), kind_);
    sourceForm->addRow(tr("Path"), pair(source, path_, browse_, QString()));
    sourceForm->addRow(tr("Count"), count_);

    auto* prep = new QGroupBox(tr("Preprocessing (images)"), this);
    prep->setObjectName(QStringLiteral("preprocessGroup"));
    auto* prepForm = new QFormLayout(prep);
    buildPipelineFields(prepForm);

    auto* left = new QVBoxLayout;
    left->addWidget(source);
    left->addWidget(prep, 1);

    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("dataStatus"));
    status_->setWordWrap(true);
    warning_ = new QLabel(this);
    warning_->setObjectName(QStringLiteral("dataWarning"));
    warning_->setWordWrap(true);
    warning_->setStyleSheet(QStringLiteral("QLabel { background: #fff4e5; color: #8a4b00; border: 1px solid #f0b46a; "
                                           "border-radius: 3px; padding: 4px; }"));
    warning_->hide();
    thumbs_ = new QListWidget(this);
    thumbs_->setObjectName(QStringLiteral("dataThumbs"));
    thumbs_->setViewMode(QListView::IconMode);
    thumbs_->setIconSize(QSize(kThumbSide, 2 * kThumbSide + 4));
    thumbs_->setResizeMode(QListView::Adjust);
    thumbs_->setMovement(QListView::Static);
    thumbs_->setSpacing(4);
    thumbs_->setWordWrap(true);
    thumbs_->setSelectionMode(QAbstractItemView::NoSelection);
    thumbs_->setToolTip(tr("Each image as decoded (top) and as the model gets it (bottom, stretched to its range)"));
    stats_ = table(this, {tr("Channel"), tr("Mean"), tr("Std"), tr("Min"), tr("Max")}, QStringLiteral("dataStats"));
    labels_ = table(this, {tr("Index"), tr("Class"), tr("Images")}, QStringLiteral("dataLabels"));
    stats_->setMaximumHeight(130);
    labels_->setMaximumHeight(130);

    auto* statsBox = new QGroupBox(tr("Preprocessed tensor, per channel"), this);
    auto* statsLayout = new QVBoxLayout(statsBox);
    statsLayout->addWidget(stats_);
    auto* labelBox = new QGroupBox(tr("Labels"), this);
    auto* labelLayout = new QVBoxLayout(labelBox);
    labelLayout->addWidget(labels_);
    auto* tables = new QHBoxLayout;
    tables->addWidget(statsBox, 3);
    tables->addWidget(labelBox, 2);

    auto* right = new QVBoxLayout;
    right->addWidget(status_);
    right->addWidget(warning_);
    thumbsTitle_ = new QLabel(tr("Before (top) and after preprocessing (bottom)"), this);
    right->addWidget(thumbsTitle_);
    right->addWidget(thumbs_, 1);
    right->addLayout(tables);

    auto* columns = new QHBoxLayout;
    columns->addLayout(left, 0);
    columns->addLayout(right, 1);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    ok_ = buttons->button(QDialogButtonBox::Ok);
    connect(buttons, &QDialogButtonBox::accepted, this, &CalibrationDataDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto* outer = new QVBoxLayout(this);
    outer->addLayout(columns, 1);
    outer->addWidget(buttons);
    resize(1160, 660); // fits a 1366x768 screen with its title bar and a panel (the layout needs 681x570)

    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(250);
    connect(debounce_, &QTimer::timeout, this, [this] { refresh(); });

    // The studio's current choice.
    const QString spec = studio_.dataPath();
    filling_ = true;
    if (spec.startsWith(QStringLiteral("images:")))
        setSource(Kind::ImageFolder, spec.mid(7));
    else if (spec.startsWith(QStringLiteral("imagelist:")))
        setSource(Kind::ImageList, spec.mid(10));
    else if (spec.startsWith(QStringLiteral("random:")))
        setSource(Kind::Random, spec.mid(7));
    else if (!spec.isEmpty())
        setSource(Kind::ArrayFile, spec);
    else
        setSource(Kind::ArrayFile,
            studio_.calibrationDataSpec().startsWith(QStringLiteral("random:")) ? QString()
                                                                                : studio_.calibrationDataSpec());
    filling_ = false;
    const QString given = studio_.dataPreprocess();
    Preprocess p;
    bool parsed = false;
    if (!given.isEmpty()) {
        try {
            p = parsePreprocess(given.toStdString());
            parsed = true;
        } catch (const Error&) {
        }
    }
    if (!parsed) {
        setPreset(QStringLiteral("torchvision"));
    } else {
        presetName_.clear();
        for (const std::string& name : preprocessPresets())
            if (parsePreprocess(name) == p)
                presetName_ = QString::fromStdString(name);
        fillFields(p);
        filling_ = true;
        preset_->setCurrentText(presetName_.isEmpty() ? kCustom : presetName_);
        filling_ = false;
    }

    connect(kind_, &QComboBox::currentIndexChanged, this, &CalibrationDataDialog::kindChanged);
    connect(path_, &QLineEdit::textChanged, this, &CalibrationDataDialog::schedule);
    connect(count_, &QSpinBox::valueChanged, this, &CalibrationDataDialog::schedule);
    connect(browse_, &QPushButton::clicked, this, &CalibrationDataDialog::browse);
    connect(studio_.jobs(), &JobRunner::jobFinished, this,
        [this](int id, const QString&, JobOutcome outcome, const QString& message) {
            if (id == job_ && outcome == JobOutcome::Failed)
                showPreview(nullptr, message);
        });
    kindChanged();
}

CalibrationDataDialog::~CalibrationDataDialog()
{
    if (jobs_ && job_ >= 0 && jobs_->isRunning(job_))
        jobs_->cancel(job_);
}

void CalibrationDataDialog::buildPipelineFields(QFormLayout* form)
{
    QWidget* parent = form->parentWidget();
    preset_ = new QComboBox(parent);
    preset_->setObjectName(QStringLiteral("dataPreset"));
    for (const std::string& name : preprocessPresets())
        preset_->addItem(QString::fromStdString(name));
    preset_->addItem(kCustom);
    preset_->setToolTip(tr("torchvision: shorter side 256, center crop 224, ImageNet mean/std, RGB\n"
                           "paddleocr-rec: height 48 keeping the ratio, (x/255-0.5)/0.5, BGR\n"
                           "yolo: letterbox 640 padded with 114, 0..1, RGB"));
    resize_ = new QComboBox(parent);
    resize_->addItems({tr("none"), tr("shorter side"), tr("exact"), tr("letterbox"), tr("keep ratio (height)")});
    width_ = sizeSpin(parent, 1);
    height_ = sizeSpin(parent, 1);
    cropWidth_ = sizeSpin(parent, 0);
    cropHeight_ = sizeSpin(parent, 0);
    interp_ = new QComboBox(parent);
    interp_->addItems({QStringLiteral("bilinear"), QStringLiteral("area")});
    pad_ = new QDoubleSpinBox(parent);
    pad_->setRange(0, 255);
    pad_->setDecimals(1);
    scale_ = new QLineEdit(parent);
    scale_->setObjectName(QStringLiteral("dataScale"));
    scale_->setToolTip(tr("Pixels (0..255) are multiplied by this: 1/255 for 0..1, 1 for raw pixels"));
    mean_ = new QLineEdit(parent);
    mean_->setObjectName(QStringLiteral("dataMean"));
    mean_->setPlaceholderText(tr("none, or 3 values (after scale)"));
    std_ = new QLineEdit(parent);
    std_->setObjectName(QStringLiteral("dataStd"));
    std_->setPlaceholderText(tr("none, or 3 values"));
    channels_ = new QComboBox(parent);
    channels_->addItems({QStringLiteral("RGB"), QStringLiteral("BGR")});
    layout_ = new QComboBox(parent);
    layout_->addItems({QStringLiteral("NCHW"), QStringLiteral("NHWC")});
    fit_ = new QCheckBox(tr("Sizes from the model's input"), parent);
    fit_->setToolTip(tr("When the model fixes H and W, the crop (or the resize) follows them"));
    pipeline_ = new QLabel(parent);
    pipeline_->setObjectName(QStringLiteral("dataPipeline"));
    pipeline_->setWordWrap(true);
    pipeline_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    pipeline_->setMinimumWidth(300);
    pipeline_->setMaximumWidth(340);

    form->addRow(tr("Preset"), preset_);
    form->addRow(tr("Resize"), resize_);
    form->addRow(tr("Size W \u00D7 H"), pair(parent, width_, height_, QStringLiteral("\u00D7")));
    form->addRow(tr("Crop W \u00D7 H"), pair(parent, cropWidth_, cropHeight_, QStringLiteral("\u00D7")));
    form->addRow(tr("Interpolation"), interp_);
    form->addRow(tr("Pad value"), pad_);
    form->addRow(tr("Scale"), scale_);
    form->addRow(tr("Mean"), mean_);
    form->addRow(tr("Std"), std_);
    form->addRow(tr("Channels"), pair(parent, channels_, layout_, QString()));
    form->addRow(QString(), fit_);
    form->addRow(pipeline_);

    connect(preset_, &QComboBox::currentTextChanged, this, [this](const QString& name) {
        if (!filling_ && name != kCustom)
            setPreset(name);
    });
    for (QComboBox* c : {resize_, interp_, channels_, layout_})
        connect(c, &QComboBox::currentIndexChanged, this, &CalibrationDataDialog::fieldsEdited);
    for (QSpinBox* s : {width_, height_, cropWidth_, cropHeight_})
        connect(s, &QSpinBox::valueChanged, this, &CalibrationDataDialog::fieldsEdited);
    connect(pad_, &QDoubleSpinBox::valueChanged, this, &CalibrationDataDialog::fieldsEdited);
    for (QLineEdit* e : {scale_, mean_, std_})
        connect(e, &QLineEdit::textChanged, this, &CalibrationDataDialog::fieldsEdited);
    connect(fit_, &QCheckBox::toggled, this, &CalibrationDataDialog::fieldsEdited);
}

void CalibrationDataDialog::setSource(Kind kind, const QString& pathOrCount)
{
    const bool was = filling_;
    filling_ = true;
    kind_->setCurrentIndex(int(kind));
    if (kind == Kind::Random)
        count_->setValue(std::max(1, pathOrCount.toInt()));
    else
        path_->setText(pathOrCount);
    filling_ = was;
    kindChanged();
}

void CalibrationDataDialog::setPreset(const QString& name)
{
    presetName_ = name;
    fillFields(parsePreprocess(name.toStdString()));
    filling_ = true;
    preset_->setCurrentText(name);
    filling_ = false;
    fieldsEdited();
}

void CalibrationDataDialog::fillFields(const Preprocess& p)
{
    filling_ = true;
    resize_->setCurrentIndex(int(p.resize));
    width_->setValue(int(p.resize == Preprocess::Resize::Shorter ? p.height : p.width));
    height_->setValue(int(p.height));
    cropWidth_->setValue(int(p.cropWidth));
    cropHeight_->setValue(int(p.cropHeight));
    interp_->setCurrentIndex(p.interp == Preprocess::Interp::Area ? 1 : 0);
    pad_->setValue(double(p.pad));
    scale_->setText(scaleText(p.scale));
    mean_->setText(triple(p.mean));
    std_->setText(triple(p.std));
    channels_->setCurrentIndex(p.bgr ? 1 : 0);
    layout_->setCurrentIndex(p.nhwc ? 1 : 0);
    fit_->setChecked(p.fitModel);
    filling_ = false;
}

QString CalibrationDataDialog::itemsFromFields(QString* problem) const
{
    using R = Preprocess::Resize;
    const auto resize = R(resize_->currentIndex());
    const QString size = QStringLiteral("%1x%2").arg(width_->value()).arg(height_->value());
    QStringList items;
    switch (resize) {
    case R::None:
        break;
    case R::Shorter:
        items << QStringLiteral("resize=%1").arg(height_->value());
        break;
    case R::Exact:
        items << QStringLiteral("resize=") + size;
        break;
    case R::Letterbox:
        items << QStringLiteral("letterbox=") + size;
        break;
    case R::KeepRatio:
        items << QStringLiteral("keepratio=") + size;
        break;
    }
    items << QStringLiteral("interp=") + interp_->currentText();
    if (cropWidth_->value() > 0 || cropHeight_->value() > 0)
        items << QStringLiteral("crop=%1x%2")
                     .arg(cropWidth_->value() > 0 ? cropWidth_->value() : cropHeight_->value())
                     .arg(cropHeight_->value() > 0 ? cropHeight_->value() : cropWidth_->value());
    items << QStringLiteral("pad=%1").arg(pad_->value());
    items << QStringLiteral("scale=") + scale_->text().trimmed();
    if (!itemList(mean_->text()).isEmpty())
        items << QStringLiteral("mean=") + itemList(mean_->text());
    if (!itemList(std_->text()).isEmpty())
        items << QStringLiteral("std=") + itemList(std_->text());
    items << (channels_->currentIndex() == 1 ? QStringLiteral("bgr") : QStringLiteral("rgb"));
    items << (layout_->currentIndex() == 1 ? QStringLiteral("nhwc") : QStringLiteral("nchw"));
    items << (fit_->isChecked() ? QStringLiteral("fit=model") : QStringLiteral("fit=fixed"));
    // The items as the fields say them (parsed only to check them: the canonical text
    // prints floats at full precision).
    const QString text = items.join(QLatin1Char(','));
    try {
        parsePreprocess(text.toStdString());
    } catch (const Error& e) {
        if (problem)
            *problem = QString::fromUtf8(e.what());
        return {};
    }
    return text;
}

void CalibrationDataDialog::fieldsEdited()
{
    if (filling_)
        return;
    const bool shorter = resize_->currentIndex() == int(Preprocess::Resize::Shorter);
    width_->setEnabled(resize_->currentIndex() != int(Preprocess::Resize::None) && !shorter);
    height_->setEnabled(resize_->currentIndex() != int(Preprocess::Resize::None));
    QString problem;
    itemsFromFields(&problem);
    // Edited away from its preset: "custom", though the preset still says what the model expects.
    filling_ = true;
    preset_->setCurrentText(!presetName_.isEmpty() && preprocessText() == presetName_ ? presetName_ : kCustom);
    filling_ = false;
    pipelineProblem_ = problem;
    updatePipelineLabel();
    schedule();
}

void CalibrationDataDialog::updatePipelineLabel()
{
    if (!pipelineProblem_.isEmpty()) {
        pipeline_->setText(
            QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(pipelineProblem_.toHtmlEscaped()));
        return;
    }
    // Break the long item lists after their commas.
    auto breakable = [](QString s) { return s.toHtmlEscaped().replace(QLatin1Char(','), QStringLiteral(",\u200B")); };
    QString text = tr("--preprocess %1").arg(breakable(preprocessText()));
    if (preview_ && !preview_->pipeline.isEmpty())
        text += tr("<br>for this model: %1").arg(resizeSteps(parsePreprocess(preview_->pipeline.toStdString())));
    pipeline_->setText(QStringLiteral("<span style='color:#6b7280'>%1</span>").arg(text));
}

QString CalibrationDataDialog::preprocessText() const
{
    const QString items = itemsFromFields(nullptr);
    if (!items.isEmpty() && !presetName_.isEmpty() &&
        parsePreprocess(items.toStdString()) == parsePreprocess(presetName_.toStdString()))
        return presetName_; // as the CLI's --preprocess torchvision
    return items;
}

QString CalibrationDataDialog::spec() const
{
    switch (Kind(kind_->currentIndex())) {
    case Kind::ImageFolder:
        return path_->text().trimmed().isEmpty() ? QString() : QStringLiteral("images:") + path_->text().trimmed();
    case Kind::ImageList:
        return path_->text().trimmed().isEmpty() ? QString() : QStringLiteral("imagelist:") + path_->text().trimmed();
    case Kind::ArrayFile:
        return path_->text().trimmed();
    case Kind::Random:
        return QStringLiteral("random:%1").arg(count_->value());
    }
    return {};
}

void CalibrationDataDialog::kindChanged()
{
    if (filling_)
        return;
    const auto kind = Kind(kind_->currentIndex());
    const bool images = kind == Kind::ImageFolder || kind == Kind::ImageList;
    path_->setEnabled(kind != Kind::Random);
    browse_->setEnabled(kind != Kind::Random);
    count_->setEnabled(kind == Kind::Random);
    for (QWidget* w : {static_cast<QWidget*>(preset_), static_cast<QWidget*>(resize_), static_cast<QWidget*>(width_),
             static_cast<QWidget*>(height_), static_cast<QWidget*>(cropWidth_), static_cast<QWidget*>(cropHeight_),
             static_cast<QWidget*>(interp_), static_cast<QWidget*>(pad_), static_cast<QWidget*>(scale_),
             static_cast<QWidget*>(mean_), static_cast<QWidget*>(std_), static_cast<QWidget*>(channels_),
             static_cast<QWidget*>(layout_), static_cast<QWidget*>(fit_)})
        w->setEnabled(images);
    path_->setPlaceholderText(kind == Kind::ImageFolder ? tr("a folder of images, or of class folders of images")
            : kind == Kind::ImageList                   ? tr("a text file of \"path,label\" lines")
                                                        : tr("an IDX or NPY file, an NPZ or a folder of NPY files"));
    if (images)
        fieldsEdited();
    else
        schedule();
}

void CalibrationDataDialog::browse()
{
    const auto kind = Kind(kind_->currentIndex());
    const QString start =
        path_->text().isEmpty() ? QFileInfo(studio_.calibrationDataSpec()).absolutePath() : path_->text();
    QString path;
    if (kind == Kind::ImageFolder)
        path = QFileDialog::getExistingDirectory(this, tr("Image folder"), start);
    else if (kind == Kind::ImageList)
        path =
            QFileDialog::getOpenFileName(this, tr("Image list"), start, tr("Lists (*.txt *.csv *.tsv);;All files (*)"));
    else
        path = QFileDialog::getOpenFileName(this, tr("Calibration data"), start,
            tr("Images and arrays (*idx3-ubyte *idx3-ubyte.gz *.npy *.npz);;All files (*)"));
    if (!path.isEmpty())
        path_->setText(path);
}

void CalibrationDataDialog::schedule()
{
    if (!filling_)
        debounce_->start();
}

bool CalibrationDataDialog::isPreviewing() const
{
    return job_ >= 0 && studio_.jobs()->isRunning(job_);
}

int CalibrationDataDialog::refresh()
{
    debounce_->stop();
    const QString s = spec();
    const bool images = isImageDataSpec(s.toStdString());
    ++serial_;
    if (s.isEmpty() || (images && !pipelineProblem_.isEmpty())) {
        if (isPreviewing())
            studio_.jobs()->cancel(job_);
        showPreview(nullptr, s.isEmpty() ? tr("Choose the data.") : pipelineProblem_);
        return -1;
    }
    PreviewRequest request;
    request.spec = s.toStdString();
    request.preprocess = images ? preprocessText().toStdString() : std::string();
    request.presetName = presetName_.toStdString();
    request.thumbSide = kThumbSide;
    const auto model = studio_.document()->model();
    std::shared_ptr<const Graph> graph = model ? model->graph : nullptr;
    if (graph)
        request.inputShapes = studio_.dataInputShapes(*graph);
    const int serial = serial_;
    QPointer<CalibrationDataDialog> self(this);
    status_->setText(tr("Reading %1\u2026").arg(s.toHtmlEscaped()));
    ok_->setEnabled(false);
    job_ = studio_.jobs()->start(QStringLiteral("data-preview"), tr("Previewing %1").arg(s),
        [self, request, graph, serial](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            progress.report(0, "decoding");
            std::shared_ptr<const DataPreview> result;
            QString error;
            // A preview of data that does not fit is an answer, not a failure to report.
            try {
                result = std::make_shared<const DataPreview>(previewData(request, graph.get(), cancel));
            } catch (const Cancelled&) {
                throw;
            } catch (const std::exception& e) {
                error = QString::fromUtf8(e.what());
            }
            return [self, result, error, serial] {
                if (self && self->serial_ == serial)
                    self->showPreview(result, error);
            };
        });
    return job_;
}

void CalibrationDataDialog::showPreview(std::shared_ptr<const DataPreview> preview, const QString& error)
{
    preview_ = std::move(preview);
    error_ = error;
    thumbs_->clear();
    stats_->setRowCount(0);
    labels_->setRowCount(0);
    warning_->hide();
    ok_->setEnabled(preview_ != nullptr);
    updatePipelineLabel();
    if (!preview_) {
        status_->setText(QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(error.toHtmlEscaped()));
        emit previewShown();
        return;
    }
    const DataPreview& p = *preview_;
    QStringList shape;
    for (const int64_t d : p.sampleShape)
        shape << QString::number(d);
    QString status = tr("<b>%1</b> samples").arg(p.count);
    if (!p.classes.isEmpty())
        status += tr(" in %1 classes").arg(p.classes.size());
    status += tr(" \u00B7 each [%1] \u00B7 statistics of %2 spread over the data")
                  .arg(shape.join(QLatin1Char(',')))
                  .arg(p.sampled);
    if (p.expectation.normalized)
        status += tr(" \u00B7 normalized input expected (%1)").arg(p.expectation.source.toHtmlEscaped());
    if (p.firstLayer)
        status += tr(" \u00B7 first layer %1: outputs spread %2\u00D7, mean %3 std off its training statistics")
                      .arg(p.firstLayer->layer.toHtmlEscaped())
                      .arg(p.firstLayer->spreadRatio, 0, 'g', 3)
                      .arg(p.firstLayer->meanShift, 0, 'g', 3);
    status_->setText(status);
    if (!p.warnings.isEmpty()) {
        warning_->setText(QStringLiteral("\u26A0 ") + p.warnings.join(QStringLiteral("\n\u26A0 ")));
        warning_->show();
    }
    const bool pairs = std::any_of(p.thumbs.begin(), p.thumbs.end(), [](const auto& t) { return !t.before.isNull(); });
    thumbs_->setIconSize(QSize(kThumbSide, pairs ? 2 * kThumbSide + 4 : kThumbSide));
    thumbsTitle_->setText(pairs ? tr("Before (top) and after preprocessing (bottom)")
                                : tr("Samples as the model gets them (stretched to their range)"));
    for (const DataPreview::Thumb& t : p.thumbs) {
        QString name = t.label >= 0 && t.label < p.classes.size() ? p.classes[int(t.label)]
            : t.label >= 0                                        ? QString::number(t.label)
                                                                  : QFileInfo(t.file).fileName();
        auto* item = new QListWidgetItem(QIcon(thumbPixmap(t)), name);
        item->setToolTip(t.label >= 0 ? tr("%1\nlabel %2").arg(t.file).arg(t.label) : t.file);
        thumbs_->addItem(item);
    }
    stats_->setRowCount(int(p.channels.size()));
    for (int c = 0; c < int(p.channels.size()); ++c) {
        const ChannelStats& s = p.channels[std::size_t(c)];
        stats_->setItem(c, 0, cell(c < p.channelNames.size() ? p.channelNames[c] : QString::number(c)));
        int col = 1;
        for (const double v : {s.mean, s.std, s.min, s.max})
            stats_->setItem(c, col++, cell(QString::number(v, 'f', 3), true));
    }
    stats_->resizeColumnsToContents();
    const int rows = int(std::max<qsizetype>(p.classes.size(), p.classCounts.size()));
    if (rows == 0) {
        labels_->setRowCount(1);
        labels_->setItem(0, 0, cell(QStringLiteral("\u2014")));
        labels_->setItem(0, 1, cell(tr("none (flat folder)")));
        labels_->setItem(0, 2, cell(QString::number(p.count), true));
    } else {
        labels_->setRowCount(rows);
        for (int r = 0; r < rows; ++r) {
            labels_->setItem(r, 0, cell(QString::number(r), true));
            labels_->setItem(r, 1, cell(r < p.classes.size() ? p.classes[r] : QString()));
            labels_->setItem(r, 2, cell(QString::number(r < p.classCounts.size() ? p.classCounts[r] : 0), true));
        }
    }
    labels_->resizeColumnsToContents();
    emit previewShown();
}

void CalibrationDataDialog::accept()
{
    const QString s = spec();
    if (s.isEmpty())
        return;
    const bool images = isImageDataSpec(s.toStdString());
    if (images && preprocessText().isEmpty())
        return;
    studio_.setData(s, images ? preprocessText() : QString());
    QDialog::accept();
}

} // namespace qs::ui
