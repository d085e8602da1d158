#include "ui/document/layer_selection.h"

#include "ui/document/model_document.h"

#include <QItemSelectionModel>
#include <QSortFilterProxyModel>

namespace qs::ui {

LayerSelection::LayerSelection(ModelDocument* doc, QObject* parent) : QObject(parent), doc_(doc)
{
    connect(doc_, &ModelDocument::modelChanged, this, [this] { setCurrent(-1, -1); });
}

void LayerSelection::attach(QSortFilterProxyModel* proxy, QItemSelectionModel* selection)
{
    proxy_ = proxy;
    selection_ = selection;
    connect(selection_, &QItemSelectionModel::currentRowChanged, this, [this] { fromSelectionModel(); });
    connect(selection_, &QItemSelectionModel::selectionChanged, this, [this] { fromSelectionModel(); });
}

void LayerSelection::fromSelectionModel()
{
    if (syncing_ || !selection_ || !proxy_)
        return;
    const QModelIndexList rows = selection_->selectedRows();
    if (rows.isEmpty()) {
        // Keep a non-layer node selected from the graph; drop a layer deselected in the table.
        if (layer_ >= 0)
            setCurrent(-1, -1);
        return;
    }
    const QModelIndex current = selection_->currentIndex();
    const QModelIndex pick = current.isValid() && selection_->isRowSelected(current.row(), current.parent())
                                 ? current
                                 : rows.front();
    const int layer = proxy_->mapToSource(pick).row();
    const LayerData* l = doc_->layer(layer);
    setCurrent(l ? l->node : -1, l ? layer : -1);
}

void LayerSelection::setCurrent(int node, int layer)
{
    if (node == node_ && layer == layer_)
        return;
    node_ = node;
    layer_ = layer;
    emit currentChanged(node_, layer_);
}

void LayerSelection::selectLayer(int layerRow)
{
    const LayerData* l = doc_->layer(layerRow);
    if (!l) {
        clear();
        return;
    }
    if (!selection_ || !proxy_) {
        setCurrent(l->node, layerRow);
        return;
    }
    QModelIndex source = proxy_->sourceModel()->index(layerRow, 0);
    QModelIndex row = proxy_->mapFromSource(source);
    if (!row.isValid()) {
        emit revealRequested(layerRow);
        row = proxy_->mapFromSource(source);
    }
    if (row.isValid()) {
        syncing_ = true;
        selection_->setCurrentIndex(row, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        syncing_ = false;
    }
    setCurrent(l->node, layerRow);
}

void LayerSelection::selectNode(int node)
{
    if (const auto& m = doc_->model()) {
        auto it = m->layerOfNode.find(node);
        if (it != m->layerOfNode.end()) {
            selectLayer(it->second);
            return;
        }
        if (node >= 0 && node < int(m->graph->nodes.size())) {
            syncing_ = true;
            if (selection_)
                selection_->clearSelection();
            syncing_ = false;
            setCurrent(node, -1);
            return;
        }
    }
    clear();
}

void LayerSelection::clear()
{
    syncing_ = true;
    if (selection_)
        selection_->clearSelection();
    syncing_ = false;
    setCurrent(-1, -1);
}

} // namespace qs::ui
