"""Importing the server loads no training, fitting or generation module (the serve-time path is lean)."""

from __future__ import annotations

from tests.serve.lean import FITTING, fitting_modules, loaded_modules


def test_importing_the_server_loads_no_fitting_module():
    modules = loaded_modules("import tagsight.serve.app")
    assert "tagsight.serve.app" in modules and "tagsight.apps.bundle" in modules
    assert fitting_modules(modules) == [], f"the server imports {fitting_modules(modules)} (none of {FITTING} allowed)"


def test_importing_the_apps_package_and_batch_prediction_loads_no_fitting_module():
    modules = loaded_modules("import tagsight.apps, tagsight.apps.predict")
    assert fitting_modules(modules) == []


def test_the_check_sees_a_fitting_import():   # the check itself can fail
    modules = loaded_modules("import tagsight.serve.app, tagsight.apps.heads")
    assert "tagsight.eval.linear" in fitting_modules(modules)
