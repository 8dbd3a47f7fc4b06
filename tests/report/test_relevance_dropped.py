"""The dropped-pairs section says how many examples it shows, and shows that many."""

import pyarrow as pa

from tagsight.report import relevance


class Recorder:
    def __init__(self):
        self.paragraphs, self.tables = [], []

    def paragraph(self, text):
        self.paragraphs.append(text)

    def table(self, header, rows):
        self.tables.append(rows)

    def figure(self, *args):
        pass


def test_the_count_it_states_is_the_count_it_shows(tmp_path):
    pairs = pa.table({"sample": [0, 1, 2, 3, 4], "label_name": ["dog", "dog", "dog", "dog", "cat"],
                      "hashtags": [["dog"]] * 4 + [["cat"]], "score": [0.01, 0.02, 0.03, 0.04, 0.05]})
    sec = Recorder()
    relevance._dropped(sec, {"dataset": {"path": str(tmp_path / "gone")}}, pairs, None, threshold=0.5, examples=4)
    assert "the lowest 3 are shown, at most two per label" in sec.paragraphs[0]
    assert [row[0] for row in sec.tables[0]] == [0, 1, 4]
