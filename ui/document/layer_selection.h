// The current layer, shared by the layer table, the graph view and the inspector.
// Once the table attaches its one QItemSelectionModel (over the filter proxy) it follows
// it, and adds the current graph node, so clicking a non-layer operator selects it too.
// Without a table (panel tests) it holds the current layer alone.
#pragma once

#include <QItemSelectionModel>
#include <QObject>
#include <QPointer>
#include <QSortFilterProxyModel>

namespace qs::ui {

class ModelDocument;

class LayerSelection : public QObject {
    Q_OBJECT
public:
    explicit LayerSelection(ModelDocument* doc, QObject* parent = nullptr);
    // The layer table's selection over its filter proxy; called once by the table.
    void attach(QSortFilterProxyModel* proxy, QItemSelectionModel* selection);

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
    QPointer<QSortFilterProxyModel> proxy_;
    QPointer<QItemSelectionModel> selection_;
    int layer_ = -1, node_ = -1;
    bool syncing_ = false;
};

} // namespace qs::ui
