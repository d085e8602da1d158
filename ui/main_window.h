// The studio's frame: the graph in the middle, the layer table and the inspector
// docked around it, the job area in the status bar, and the menus features add to.
// All state lives in the Studio it owns; the window only arranges and connects.
#pragma once

#include "ui/document/studio.h"

#include <QList>
#include <QMainWindow>

class QAction;
class QDateTime;
class QDockWidget;
class QLabel;
class QMenu;
class QTabWidget;
class QToolBar;

namespace qs::ui {

class CalibrationDataDialog;
class ElidedLabel;
class ProjectController;
class GraphPanel;
class InspectorPanel;
class JobStatusWidget;
class LayerTablePanel;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    Studio& studio() const { return *studio_; }
    ProjectController* project() const { return project_; }
    void openFile(const QString& path); // a model or a .qsproj, after asking about unsaved work

    // What features attach to. One helper makes every dock (as hotspot's dockify):
    // titled, movable, floatable and closable, tabbed behind `tabifyWith` when given.
    QDockWidget* addDock(QWidget* content, const QString& title, const QString& objectName, Qt::DockWidgetArea area,
        QDockWidget* tabifyWith = nullptr);
    void addViewEntry(QDockWidget* dock);                // the dock's toggle in View, among the other docks
    // A main view: a tab in the middle of the window beside the graph (Compare), hidden
    // until showMainView(view) brings it to the front.
    void addMainView(QWidget* view, const QString& title);
    void showMainView(QWidget* view, bool show = true);
    QTabWidget* mainViews() const { return views_; }
    void addAnalyzeAction(QAction* action);              // Analyze, above Cancel Job
    void addFileActions(const QList<QAction*>& actions); // File, a group above Quit
    QMenu* addMenu(const QString& title);                // a feature's own menu, before Help
    QMenu* fileMenu() const { return fileMenu_; }
    QMenu* editMenu() const { return editMenu_; }
    QMenu* viewMenu() const { return viewMenu_; }
    QMenu* analyzeMenu() const { return analyzeMenu_; }
    QMenu* helpMenu() const { return helpMenu_; }
    QToolBar* toolBar() const { return toolBar_; }
    QDockWidget* layersDock() const { return tableDock_; }
    QDockWidget* inspectorDock() const { return inspectorDock_; }

    LayerTablePanel* layerPanel() const { return table_; }
    GraphPanel* graphPanel() const { return graph_; }
    InspectorPanel* inspector() const { return inspector_; }
    JobStatusWidget* jobStatus() const { return jobStatus_; }
    QAction* calibrateAction() const { return calibrateAction_; }
    QLabel* storeLabel() const { return storeLabel_; }
    // File > Calibration Data: opens the dialog (non-modal; OK sets the studio's data).
    CalibrationDataDialog* chooseData();

    // The installed features (each install() registers its own), e.g.
    // window.feature<SensitivityFeature>()->panel().
    void addFeature(QObject* feature) { features_.append(feature); }
    template<class F> F* feature() const
    {
        for (QObject* f : features_)
            if (auto* typed = qobject_cast<F*>(f))
                return typed;
        return nullptr;
    }

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void createActions();
    void createMenus();
    void createDocks();
    void restoreSettings();
    void saveSettings();
    void addRecent(const QString& path);
    void rebuildRecentMenu();
    void showShortcuts();
    bool saveProject(bool choosePath);
    bool maybeSave();
    void offerAutosave(const QDateTime& when);
    void chooseModel();
    void chooseStore();
    void showStore();
    void updateTitle();
    void updateSummary();
    void updateActions();

    Studio* studio_;
    LayerTablePanel* table_;
    GraphPanel* graph_;
    QTabWidget* views_;
    InspectorPanel* inspector_;
    JobStatusWidget* jobStatus_;
    ElidedLabel* summary_;
    QLabel* storeLabel_;
    QDockWidget* tableDock_ = nullptr;
    QDockWidget* inspectorDock_ = nullptr;
    QMenu* fileMenu_ = nullptr;
    QMenu* editMenu_ = nullptr;
    QMenu* viewMenu_ = nullptr;
    QMenu* analyzeMenu_ = nullptr;
    QMenu* helpMenu_ = nullptr;
    ProjectController* project_ = nullptr;
    QAction* saveProjectAction_ = nullptr;
    QAction* saveProjectAsAction_ = nullptr;
    QMenu* recentMenu_ = nullptr;
    QToolBar* toolBar_ = nullptr;
    QAction* openAction_ = nullptr;
    QAction* demoAction_ = nullptr;
    QAction* dataAction_ = nullptr;
    QAction* storeAction_ = nullptr;
    QAction* calibrateAction_ = nullptr;
    QAction* cancelAction_ = nullptr;
    QAction* quitAction_ = nullptr;
    QByteArray defaultState_;
    QList<QObject*> features_;
};

} // namespace qs::ui
