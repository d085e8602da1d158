// The current layer, shared by the layer table, the graph view and the inspector.
// It wraps the table's one QItemSelectionModel (over the filter proxy) and adds the
// current graph node, so clicking a non-layer operator in the graph selects it too.
#pragma once

#include <QObject>
#include <QPointer>

#include <QItemSelectionModel>
class QSortFilterProxyModel;

namespace qs::ui {

class ModelDocument;

class LayerSelection : public QObject {
    Q_OBJECT
public:
    LayerSelection(ModelDocument* doc, QSortFilterProxyModel* proxy, QItemSelectionModel* selection,
                   QObject* parent = nullptr);

    int currentLayer() const { return layer_; } // row in ModelData::layers, -1 for none
    int currentNode() const { return node_; }   // index in Graph::nodes, -1 for none
    QItemSelectionModel* selectionModel() const { return selection_; }

public slots:
    void selectLayer(int layerRow);
    // Selects the node's layer when it is one, else only the node.
    void selectNode(int node);
    void clear();

signals:
    void currentChanged(int node, int layerRow);
    // The layer is hidden by the table's filter; the table clears its filter on this.
    void revealRequested(int layerRow);

private:
    void fromSelectionModel();
    void setCurrent(int node, int layer);

    ModelDocument* doc_;
    QSortFilterProxyModel* proxy_;
    QPointer<QItemSelectionModel> selection_;
    int layer_ = -1, node_ = -1;
    bool syncing_ = false;
};

} // namespace qs::ui
