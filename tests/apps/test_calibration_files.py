"""Files a bundle reads that parse as JSON but are not the object they should be are refused by reason."""

import pytest

from tagsight.apps.calibrators import load_calibration
from tagsight.apps.export_format import load_exported_backbone
from tagsight.fsio import ReasonError


def test_a_calibration_that_is_not_a_json_object_is_a_bad_calibration(tmp_path):
    (tmp_path / "calibration.json").write_text("[1, 2]")
    with pytest.raises(ReasonError) as err:
        load_calibration(tmp_path)
    assert err.value.reason == "bad_calibration" and "not a JSON object" in str(err.value)


def test_an_export_record_that_is_not_a_json_object_is_not_an_export(tmp_path):
    (tmp_path / "bundle.json").write_text('"tagsight-export"')
    with pytest.raises(ReasonError) as err:
        load_exported_backbone(tmp_path)
    assert err.value.reason == "not_an_export"
