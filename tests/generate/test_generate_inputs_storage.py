"""``generate RUN --prompts FILE`` with the prompts file at a URL (moto's S3 server): read through fsspec; a missing one
is refused with its reason."""

import json

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.cli import main  # noqa: E402
from tagsight.generate.sample import read_prompts  # noqa: E402
from tagsight.storage import open_filesystem  # noqa: E402
from tests.s3server import bucket, environ, moto_s3, s3_env  # noqa: E402


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def test_generate_reads_its_prompts_file_from_a_store(base_run, tmp_path, capsys):
    tokens = sorted(json.loads((base_run / "tokens.json").read_text())["lookup"])
    url = "s3://generate-inputs/prompts/p.txt"
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket(url)
        fs, inner = open_filesystem(url)
        fs.pipe_file(inner, f"// two prompts\n#{tokens[0]}\n\n#{tokens[1]} #{tokens[0]}\n".encode())
        assert read_prompts(url) == [f"#{tokens[0]}", f"#{tokens[1]} #{tokens[0]}"]
        capsys.readouterr()
        assert main(["-q", "generate", str(base_run), "--prompts", url, "--n", "1", "--steps", "2",
                     "--out", str(tmp_path / "samples"), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["prompts"] == 2
        rows = [json.loads(line) for line in (tmp_path / "samples" / "samples.jsonl").read_text().splitlines()]
        assert [r["prompt"] for r in rows] == [f"#{tokens[0]}", f"#{tokens[1]} #{tokens[0]}"]
        assert main(["-q", "generate", str(base_run), "--prompts", "s3://generate-inputs/prompts/none.txt",
                     "--out", str(tmp_path / "none")]) == 2
        assert "prompts file s3://generate-inputs/prompts/none.txt does not exist" in capsys.readouterr().err
