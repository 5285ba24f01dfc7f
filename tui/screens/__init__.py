"""The app's panes (one per module) and its modal screens."""
