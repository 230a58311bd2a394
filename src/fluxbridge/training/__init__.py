"""Training: data modules, site folds, the bridge-decoupling callback, the member runner."""
